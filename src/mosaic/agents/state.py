"""Per-agent supervision records, in the fleet database (table `agents`).

Several processes touch one record (a `start`, a `stop`, tmux's pane-died hook, a delayed
respawn, a systemd unit), so every change is a read-modify-write under the agent's flock,
each write one short transaction. The flock (not the database lock) spans a whole step
such as "check, respawn the pane, record its pid", so the database is never held across a
tmux call; readers never wait.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum

from mosaic.agents.settings import Settings
from mosaic.base.flock import exclusive
from mosaic.config.paths import Paths
from mosaic.config.roster import Agent, RestartPolicy
from mosaic.store import db

# `typing` costs a measurable share of `status`'s start-up; annotations only need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Desired(StrEnum):
    """What the operator asked for last; hooks and units respawn only `running`."""

    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class AgentState:
    desired: Desired = Desired.STOPPED
    # Bumped on every start/stop so a delayed respawn scheduled earlier can tell it is stale.
    generation: int = 0
    restart_policy: RestartPolicy = RestartPolicy.ON_FAILURE
    restarts: int = 0
    last_exit: int | None = None
    started_at: float | None = None
    pid: int | None = None
    # Consecutive exits that came soon after a start; drives backoff and `failed`.
    crash_streak: int = 0
    failed: bool = False
    # Wall-clock time a scheduled respawn is due, None when none is pending.
    respawn_due: float | None = None
    # systemd only: the agent's unit was stopped because the holder (the tmux server) went
    # away, not because anyone asked; the holder's next start revives it.
    holder_lost: bool = False
    # What the runtime was last launched with (`agents.settings`); None when never recorded.
    settings: Settings | None = None


def disarmed(s: AgentState) -> AgentState:
    """The record after an operator's stop: no longer wanted, and any respawn already
    scheduled is made stale by the new generation."""
    return replace(s, desired=Desired.STOPPED, generation=s.generation + 1, respawn_due=None)


def armed(
    agent: Agent, now: float, settings: Settings
) -> Callable[[AgentState], AgentState]:
    """The record for a start (either supervisor), written before the launch so that a
    runtime that dies at once finds `running` here. Restart counts start afresh; `settings`
    are what this launch runs with (`agents.settings.effective`), kept until the next one
    (a respawn reruns the same command, so it keeps them)."""

    def change(s: AgentState) -> AgentState:
        return replace(
            s, desired=Desired.RUNNING, generation=s.generation + 1, failed=False,
            crash_streak=0, restarts=0, respawn_due=None, started_at=now, pid=None,
            restart_policy=agent.restart, holder_lost=False, settings=settings,
        )  # fmt: skip

    return change


_FIELDS = {f.name for f in fields(AgentState)}


def _decode(raw: str | None) -> AgentState:
    if raw is None:
        return AgentState()
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return AgentState()
    if not isinstance(data, dict):
        return AgentState()
    known = {k: v for k, v in data.items() if k in _FIELDS}
    try:
        state = AgentState(**known)
        return replace(
            state,
            desired=Desired(state.desired),
            restart_policy=RestartPolicy(state.restart_policy),
            settings=Settings.from_doc(known.get("settings")),
        )
    except (TypeError, ValueError):
        return AgentState()


def _fetch(conn: sqlite3.Connection, agent: str) -> AgentState:
    row = conn.execute("SELECT record FROM agents WHERE name = ?", (agent,)).fetchone()
    return _decode(row[0] if row else None)


def read(paths: Paths, agent: str) -> AgentState:
    with db.opened(paths.db) as conn:
        return _fetch(conn, agent)


def read_many(paths: Paths, agents: Iterable[str]) -> dict[str, AgentState]:
    """Every named agent's record in one query (never-started agents get the default)."""
    with db.opened(paths.db) as conn:
        return fetch_many(conn, agents)


def fetch_many(conn: sqlite3.Connection, agents: Iterable[str]) -> dict[str, AgentState]:
    """`read_many` on a connection the caller holds (status reads more in the same go)."""
    names = list(agents)
    rows = dict(conn.execute("SELECT name, record FROM agents").fetchall())
    return {name: _decode(rows.get(name)) for name in names}


def read_all(paths: Paths) -> dict[str, AgentState]:
    """Every agent that has a record, in or out of the roster (`apply` finds the ones
    that left it here)."""
    with db.opened(paths.db) as conn:
        rows = conn.execute("SELECT name, record FROM agents ORDER BY name").fetchall()
    return {name: _decode(record) for name, record in rows}


def _encode(new: AgentState) -> str:
    doc = asdict(new)
    doc["settings"] = None if new.settings is None else new.settings.to_doc()
    return json.dumps(doc)


def _store(paths: Paths, agent: str, new: AgentState) -> None:
    with db.opened(paths.db) as conn, db.write(conn):
        conn.execute(
            "INSERT INTO agents (name, record) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET record = excluded.record",
            (agent, _encode(new)),
        )


def forget(paths: Paths, agent: str) -> None:
    """Drop the record of an agent that left the roster (it is stopped already)."""
    with exclusive(paths.agent_record_lock(agent)), db.opened(paths.db) as conn, db.write(conn):
        conn.execute("DELETE FROM agents WHERE name = ?", (agent,))


class Transaction:
    """The agent's record while its lock is held; `save` may be called more than once."""

    def __init__(self, paths: Paths, agent: str) -> None:
        self._paths = paths
        self._agent = agent
        self.current = read(paths, agent)

    def save(self, new: AgentState) -> AgentState:
        _store(self._paths, self._agent, new)
        self.current = new
        return new


@contextmanager
def transaction(paths: Paths, agent: str) -> Iterator[Transaction]:
    """Hold the agent's lock across several steps (e.g. record, then act, then record)."""
    with exclusive(paths.agent_record_lock(agent)):
        yield Transaction(paths, agent)


def update(
    paths: Paths, agent: str, change: Callable[[AgentState], AgentState]
) -> AgentState:
    """Apply `change` to the agent's record under its lock and persist the result."""
    with transaction(paths, agent) as txn:
        return txn.save(change(txn.current))
