"""The outbox (table `outbox`, docs/outbox.md): messages waiting for agents, and every
transition of their lives, each one short write transaction.

    queued ──begin──▶ delivering ──▶ delivered
       ▲                  │    └───▶ failed   (attempts used up; the agent left the roster;
       └──── requeue ─────┘                   an interrupted delivery that cannot be decided)
    queued ──▶ expired (ttl) | cancelled (operator) | failed (the agent left the roster)
    failed ──retry──▶ queued;  failed ──cancel──▶ cancelled

A deliverer's transitions (`begin`, `settle`) are fenced: accepted only while the caller's
lease epoch is the current one (`acquire` hands out a new epoch to each watcher), so a stale
watcher can never move a message, let alone type it. They are committed before the
keystrokes that depend on them (the database is synchronous=FULL). The operator's
transitions (`cancel`, `retry`, `expire_due`, `fail_agents`) start only from `queued` or
`failed`, from which nothing is being typed, and a deliverer's `begin` re-checks the state in
its own transaction, so they need no fence.

`delivered` and `delivery_failed` events are appended in the same transaction as the state
they report.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from mosaic.config.eventtypes import EventType
from mosaic.store import db, events, outboxrows
from mosaic.store.outboxrows import DEFAULT_MAX_ATTEMPTS

__all__ = ["DEFAULT_MAX_ATTEMPTS", "Message", "State"]

LEASE = "outbox"
LEFT_ROSTER = "the agent left the roster"
# How a refused `cancel`/`retry` line starts, the id following: a controller reads a
# host's refusals by it (hosts/outboxing.py).
REFUSED_PREFIX = "message "


class State(StrEnum):
    QUEUED = outboxrows.QUEUED
    DELIVERING = outboxrows.DELIVERING
    DELIVERED = outboxrows.DELIVERED
    FAILED = outboxrows.FAILED
    EXPIRED = outboxrows.EXPIRED
    CANCELLED = outboxrows.CANCELLED


@dataclass(frozen=True)
class Message:
    id: int
    agent: str
    text: str
    state: State
    attempts: int
    max_attempts: int
    queued_at: float
    expires_at: float | None
    next_at: float  # not tried again before this (backoff after an attempt not accepted)
    began_at: float | None  # when the latest attempt began
    delivered_at: float | None
    finished_at: float | None
    epoch: int | None  # the lease epoch of the deliverer that began the latest attempt
    # The agent's transcript when the text was first pasted (inode, size): where evidence
    # of this message can start (docs/outbox.md).
    log_inode: int | None
    log_offset: int | None
    process: str | None  # the runtime process that was typed into ("pid:start ticks")
    typed: bool  # the text may have reached the agent: decide from evidence before typing
    reason: str | None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def as_json(self) -> dict[str, Any]:
        return outboxrows.as_json([getattr(self, name) for name in outboxrows.SHOWN])


_COLUMNS = ", ".join(f.name for f in fields(Message))
_SELECT = f"SELECT {_COLUMNS} FROM outbox"  # noqa: S608


def _message(row: Sequence[Any]) -> Message:
    values = list(row)
    values[3] = State(values[3])
    values[16] = bool(values[16])
    return Message(*values)


# --- reading -------------------------------------------------------------------------------


def get(conn: sqlite3.Connection, ids: Sequence[int]) -> list[Message]:
    """These messages, in the order of `ids`; unknown ids are left out."""
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    found = {
        m.id: m
        for m in map(_message, conn.execute(f"{_SELECT} WHERE id IN ({marks})", list(ids)))
    }
    return [found[i] for i in ids if i in found]


def listing(
    conn: sqlite3.Connection, agent: str | None = None, everything: bool = False
) -> list[Message]:
    """Oldest first: the messages not yet delivered nor given up on, or `everything`."""
    clauses, args = [], []
    if not everything:
        clauses.append("state IN (?, ?)")
        args += list(outboxrows.PENDING)
    if agent is not None:
        clauses.append("agent = ?")
        args.append(agent)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return [_message(r) for r in conn.execute(f"{_SELECT}{where} ORDER BY id", args)]


def pending_agents(conn: sqlite3.Connection) -> list[str]:
    """Agents that have a message queued or being delivered (one indexed scan)."""
    rows = conn.execute(
        "SELECT DISTINCT agent FROM outbox WHERE state IN (?, ?)", outboxrows.PENDING
    )
    return [str(r[0]) for r in rows]


def head(conn: sqlite3.Connection, agent: str) -> Message | None:
    """The agent's oldest message not yet settled: the only one that may be typed next,
    so messages arrive in the order they were queued."""
    row = conn.execute(
        f"{_SELECT} WHERE state IN (?, ?) AND agent = ? ORDER BY id LIMIT 1",
        (*outboxrows.PENDING, agent),
    ).fetchone()
    return None if row is None else _message(row)


# --- queueing ------------------------------------------------------------------------------


def enqueue(
    conn: sqlite3.Connection,
    agents: Sequence[str],
    text: str,
    now: float,
    ttl: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[int]:
    with db.write(conn):
        return [row[0] for row in outboxrows.insert(conn, agents, text, now, ttl, max_attempts)]


# --- the lease -----------------------------------------------------------------------------


def acquire(conn: sqlite3.Connection, pid: int, now: float) -> int:
    """A new epoch for this deliverer; from now on only its transitions are accepted."""
    with db.write(conn):
        conn.execute(
            "INSERT INTO leases (name, epoch, pid, since) VALUES (?, 1, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET epoch = epoch + 1, pid = excluded.pid, "
            "since = excluded.since",
            (LEASE, pid, now),
        )
        (epoch,) = conn.execute("SELECT epoch FROM leases WHERE name = ?", (LEASE,)).fetchone()
    return int(epoch)


def current_epoch(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT epoch FROM leases WHERE name = ?", (LEASE,)).fetchone()
    return None if row is None else int(row[0])


# --- the deliverer's transitions (fenced) --------------------------------------------------


def begin(
    conn: sqlite3.Connection,
    message: Message,
    epoch: int,
    now: float,
    *,
    position: tuple[int | None, int] | None,
    process: str | None,
) -> bool:
    """→ delivering, one more attempt, before anything is typed for it. `position` is the
    transcript's (inode, size) before a paste; None keeps the recorded one (only the submit
    key is pressed: the evidence still starts where the text was pasted). False: nothing may
    be typed (another watcher holds the lease, or the message moved: cancelled, expired)."""
    keep = position is None
    inode, offset = (None, None) if position is None else position
    with db.write(conn):
        cur = conn.execute(
            "UPDATE outbox SET state = ?, attempts = attempts + 1, began_at = ?, epoch = ?, "
            "typed = 1, reason = NULL, "
            "log_inode = CASE WHEN ? THEN log_inode ELSE ? END, "
            "log_offset = CASE WHEN ? THEN log_offset ELSE ? END, "
            "process = CASE WHEN ? THEN process ELSE ? END "
            "WHERE id = ? AND state = ? AND state IN (?, ?) "
            "AND (state = ? OR expires_at IS NULL OR expires_at > ?) "
            "AND ? = (SELECT epoch FROM leases WHERE name = ?)",
            (State.DELIVERING, now, epoch, keep, inode, keep, offset, keep, process,
             message.id, message.state, *outboxrows.PENDING, State.DELIVERING, now, epoch,
             LEASE),
        )  # fmt: skip
    return cur.rowcount == 1


def settle(
    conn: sqlite3.Connection,
    message: Message,
    epoch: int,
    now: float,
    to: State,
    reason: str | None = None,
    next_at: float | None = None,
) -> bool:
    """Decide a message the deliverer holds (delivering, or queued with its text possibly
    typed): `delivered`, `failed`, or back to `queued` until `next_at`. The state must still
    be the one the caller read, and the caller's epoch the current one."""
    if to not in (State.DELIVERED, State.FAILED, State.QUEUED):
        raise ValueError(f"a deliverer cannot settle a message as {to}")
    drafts = []
    if to is State.DELIVERED:
        drafts.append(events.draft(message.agent, EventType.DELIVERED, id=message.id))
    elif to is State.FAILED:
        drafts.append(events.draft(message.agent, EventType.DELIVERY_FAILED, id=message.id,
                                   reason=reason))  # fmt: skip
    done = to is not State.QUEUED
    with db.write(conn):
        cur = conn.execute(
            "UPDATE outbox SET state = ?, reason = ?, next_at = COALESCE(?, next_at), "
            "delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END, "
            "finished_at = CASE WHEN ? THEN ? ELSE finished_at END, "
            "typed = CASE WHEN ? THEN 0 ELSE typed END "
            "WHERE id = ? AND state = ? AND state IN (?, ?) "
            "AND ? = (SELECT epoch FROM leases WHERE name = ?)",
            (to, reason, next_at, to is State.DELIVERED, now, done, now,
             to is State.DELIVERED, message.id, message.state, *outboxrows.PENDING, epoch,
             LEASE),
        )  # fmt: skip
        if cur.rowcount != 1:
            return False
        events.append(conn, drafts, now)
    return True


# --- the operator's transitions ------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What `cancel`/`retry` did to one message: its new state, or why nothing."""

    id: int
    agent: str
    state: State
    error: str | None = None


def cancel(conn: sqlite3.Connection, ids: Sequence[int], now: float) -> list[Change]:
    """queued or failed → cancelled; anything else is left as it is, with the reason."""
    return _operate(conn, ids, now, "cancelled", (State.QUEUED, State.FAILED), State.CANCELLED)


def retry(conn: sqlite3.Connection, ids: Sequence[int], now: float) -> list[Change]:
    """failed → queued with a fresh set of attempts; queued → tried without waiting out its
    backoff. Anything else is left as it is, with the reason."""
    return _operate(conn, ids, now, "retried", (State.QUEUED, State.FAILED), State.QUEUED)


def _operate(
    conn: sqlite3.Connection,
    ids: Sequence[int],
    now: float,
    verb: str,
    allowed: tuple[State, ...],
    to: State,
) -> list[Change]:
    changes = []
    with db.write(conn):
        for message in get(conn, ids):
            if message.state not in allowed:
                why = f"{REFUSED_PREFIX}{message.id} is {message.state}; only " + " or ".join(
                    str(s) for s in allowed
                ) + f" messages can be {verb}"
                changes.append(Change(message.id, message.agent, message.state, why))
                continue
            if to is State.CANCELLED:
                conn.execute(
                    "UPDATE outbox SET state = ?, finished_at = ?, reason = ? WHERE id = ?",
                    (to, now, "cancelled by the operator", message.id),
                )
            else:
                conn.execute(
                    "UPDATE outbox SET state = ?, next_at = ?, reason = NULL, finished_at = NULL, "
                    "attempts = CASE WHEN state = ? THEN 0 ELSE attempts END WHERE id = ?",
                    (to, now, State.FAILED, message.id),
                )
            changes.append(Change(message.id, message.agent, to))
    return changes


def expire_due(conn: sqlite3.Connection, now: float) -> list[Message]:
    """Queued messages whose ttl ran out → expired, each with a `delivery_failed` event.
    Only reads unless one is due, so it is cheap to call often."""
    sql = f"{_SELECT} WHERE state = ? AND expires_at IS NOT NULL AND expires_at <= ?"
    if conn.execute(sql + " LIMIT 1", (State.QUEUED, now)).fetchone() is None:
        return []
    with db.write(conn):
        due = [_message(r) for r in conn.execute(sql + " ORDER BY id", (State.QUEUED, now))]
        for m in due:
            conn.execute(
                "UPDATE outbox SET state = ?, finished_at = ?, reason = ? WHERE id = ?",
                (State.EXPIRED, now, "not delivered within its ttl", m.id),
            )
        events.append(conn, [
            events.draft(m.agent, EventType.DELIVERY_FAILED, id=m.id, reason="expired")
            for m in due
        ], now)  # fmt: skip
    return due


def fail_agents(
    conn: sqlite3.Connection, agents: Sequence[str], reason: str, now: float
) -> list[Message]:
    """Every pending message of these agents → failed with `reason`, never silently dropped
    (an agent that left the roster can no longer take them)."""
    if not agents:
        return []
    marks = ", ".join("?" * len(agents))
    sql = f"{_SELECT} WHERE state IN (?, ?) AND agent IN ({marks}) ORDER BY id"
    with db.write(conn):
        gone = [_message(r) for r in conn.execute(sql, (*outboxrows.PENDING, *agents))]
        for m in gone:
            conn.execute(
                "UPDATE outbox SET state = ?, finished_at = ?, reason = ? WHERE id = ?",
                (State.FAILED, now, reason, m.id),
            )
        events.append(conn, [
            events.draft(m.agent, EventType.DELIVERY_FAILED, id=m.id, reason=reason)
            for m in gone
        ], now)  # fmt: skip
    return gone


def fail_absent(
    conn: sqlite3.Connection, known: Sequence[str], reason: str, now: float
) -> list[Message]:
    """`fail_agents` for every agent with a pending message that is not in `known` (the
    roster's names)."""
    keep = set(known)
    return fail_agents(conn, [a for a in pending_agents(conn) if a not in keep], reason, now)
