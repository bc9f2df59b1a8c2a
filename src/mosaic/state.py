"""Per-agent supervision records under <home>/fleet/run/agents/.

Several processes touch one record (a `start`, a `stop`, tmux's pane-died hook, a delayed
respawn), so every change is a read-modify-write under the agent's flock, written with an
atomic replace: readers without the lock see either the old or the new record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from mosaic.fsutil import atomic_write, ensure_dir
from mosaic.lock import exclusive
from mosaic.paths import Paths


@dataclass(frozen=True)
class AgentState:
    # What the operator asked for last: "running" or "stopped". Hooks respawn only "running".
    desired: str = "stopped"
    # Bumped on every start/stop so a delayed respawn scheduled earlier can tell it is stale.
    generation: int = 0
    restart_policy: str = "on-failure"
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


def disarmed(s: AgentState) -> AgentState:
    """The record after an operator's stop: no longer wanted, and any respawn already
    scheduled is made stale by the new generation."""
    return replace(s, desired="stopped", generation=s.generation + 1, respawn_due=None)


def _dir(paths: Paths) -> Path:
    return paths.run / "agents"


def record_path(paths: Paths, agent: str) -> Path:
    return _dir(paths) / f"{agent}.json"


def read(paths: Paths, agent: str) -> AgentState:
    try:
        raw = json.loads(record_path(paths, agent).read_text())
    except (FileNotFoundError, ValueError):
        return AgentState()
    known = {f.name for f in fields(AgentState)}
    return AgentState(**{k: v for k, v in raw.items() if k in known})


class Transaction:
    """The agent's record while its lock is held; `save` may be called more than once."""

    def __init__(self, paths: Paths, agent: str) -> None:
        self._path = record_path(paths, agent)
        self.current = read(paths, agent)

    def save(self, new: AgentState) -> AgentState:
        atomic_write(self._path, json.dumps(asdict(new)).encode())
        self.current = new
        return new


@contextmanager
def transaction(paths: Paths, agent: str) -> Iterator[Transaction]:
    """Hold the agent's lock across several steps (e.g. record, then act, then record)."""
    ensure_dir(_dir(paths))
    with exclusive(_dir(paths) / f"{agent}.lock"):
        yield Transaction(paths, agent)


def update(
    paths: Paths, agent: str, change: Callable[[AgentState], AgentState]
) -> AgentState:
    """Apply `change` to the agent's record under its lock and persist the result."""
    with transaction(paths, agent) as txn:
        return txn.save(change(txn.current))
