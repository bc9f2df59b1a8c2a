"""The fleet's event log (table `events`, docs/reference.md "events"): append, read, follow,
prune.

Every event has a `seq` that SQLite hands out inside the writer's transaction, and writers
hold the write lock from their first statement (`db.write`), so events commit in `seq`
order: a reader that has seen everything up to N never later finds an event below N. That
is what lets `events --follow` (and the web dashboard) tail the log by seq alone, across
any watcher restart, without missing or repeating one.

Retention: the last 7 days, never fewer than the last 10,000 events, never more than
100,000. The upper bound is enforced on every append (one indexed range delete); the age
rule runs from the watcher now and then (`prune`).

JSON lines are assembled by SQLite itself (`json_lines`): printing 10,000 events must cost
little more than reading them.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mosaic.config.eventtypes import FIELDS, EventType
from mosaic.errors import OperationFailed
from mosaic.store import db, eventlines
from mosaic.store.eventlines import iso

KEEP_S = 7 * 24 * 3600.0
FLOOR = 10_000
CAP = 100_000
FOLLOW_POLL_S = 0.1


__all__ = ["iso"]


@dataclass(frozen=True)
class Draft:
    """An event not yet in the log: who, what, and the type's fields."""

    agent: str | None
    type: EventType
    fields: Mapping[str, Any] = field(default_factory=dict)

    def data(self) -> str:
        known = FIELDS[self.type]
        extra = set(self.fields) - set(known)
        if extra:
            raise ValueError(f"event {self.type} has no field(s) {sorted(extra)}")
        ordered = {k: self.fields[k] for k in known if k in self.fields}
        return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


def draft(agent: str | None, type: EventType, **fields: Any) -> Draft:
    return Draft(agent, type, fields)


@dataclass(frozen=True)
class Event:
    seq: int
    ts: str
    agent: str | None
    type: str
    fields: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "agent": self.agent, "type": self.type,
                **self.fields}  # fmt: skip


# --- writing -------------------------------------------------------------------------------


def append(conn: sqlite3.Connection, drafts: Sequence[Draft], now: float | None = None) -> int:
    """Insert `drafts` in order inside the caller's write transaction; the last seq (0 when
    there was nothing to insert)."""
    ts = iso(time.time() if now is None else now)
    last = 0
    for d in drafts:
        cur = conn.execute(
            "INSERT INTO events (ts, agent, type, data) VALUES (?, ?, ?, ?)",
            (ts, d.agent, str(d.type), d.data()),
        )
        last = int(cur.lastrowid or 0)
    if last > CAP:
        conn.execute("DELETE FROM events WHERE seq <= ?", (last - CAP,))
    return last


def record(paths_db: Path, drafts: Sequence[Draft]) -> int:
    """Append `drafts` in one short transaction of their own. Best effort: the operation
    that caused them (a stop, a send, a crash being handled) has happened whatever the log
    says, so a log that cannot be written is reported on stderr and the caller goes on."""
    if not drafts:
        return 0
    try:
        with db.opened(paths_db) as conn, db.write(conn):
            return append(conn, drafts)
    except (sqlite3.Error, OSError, OperationFailed) as exc:
        print(f"mosaic: could not record {len(drafts)} event(s): {exc}", file=sys.stderr)
        return 0


def prune(conn: sqlite3.Connection, now: float | None = None) -> int:
    """Drop events older than KEEP_S unless among the newest FLOOR; keep at most CAP."""
    last = last_seq(conn)
    cutoff = iso((time.time() if now is None else now) - KEEP_S)
    with db.write(conn):
        gone = conn.execute(
            "DELETE FROM events WHERE seq <= ? AND ts < ?", (last - FLOOR, cutoff)
        ).rowcount
        gone += conn.execute("DELETE FROM events WHERE seq <= ?", (last - CAP,)).rowcount
    return int(gone)


# --- cursors -------------------------------------------------------------------------------


def cursor(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])


def set_cursor(conn: sqlite3.Connection, name: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO cursors (name, seq) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        (name, seq),
    )


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """Which events: after a seq (exclusive), at or after a time, of some types, for one
    agent. Empty `types` means every type."""

    after: int = 0
    since_ts: str | None = None
    types: tuple[str, ...] = ()
    agent: str | None = None

    def where(self, upto: int | None = None) -> tuple[str, list[Any]]:
        return eventlines.where(self.after, self.since_ts, self.types, self.agent, upto)


def last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return int(row[0]) if row else 0


def since(
    conn: sqlite3.Connection, query: Query, upto: int | None = None, limit: int | None = None
) -> list[Event]:
    """Events matching `query`, oldest first (the read API the CLI and the web use)."""
    where, args = query.where(upto)
    sql = f"SELECT seq, ts, agent, type, data FROM events WHERE {where} ORDER BY seq"  # noqa: S608
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_event(row) for row in conn.execute(sql, args)]


def newest_start(conn: sqlite3.Connection, query: Query, n: int) -> int:
    """The seq after which the newest `n` events matching `query` begin (`query.after` when
    fewer match): "the last N events" as a query the other readers take."""
    where, args = query.where()
    sql = f"SELECT seq FROM events WHERE {where} ORDER BY seq DESC LIMIT 1 OFFSET ?"  # noqa: S608
    row = conn.execute(sql, [*args, max(0, n)]).fetchone()
    return int(row[0]) if row else query.after


def _event(row: tuple[Any, ...]) -> Event:
    seq, ts, agent, type_, data = row
    try:
        fields = json.loads(data)
    except ValueError:
        fields = {}
    return Event(int(seq), str(ts), agent, str(type_), fields if isinstance(fields, dict) else {})


def json_lines(
    conn: sqlite3.Connection, query: Query, upto: int | None = None
) -> list[tuple[int, str]]:
    """(seq, JSON line) of each matching event, oldest first, assembled by SQLite (no
    Python round trip through `json` per event)."""
    where, args = query.where(upto)
    try:
        return eventlines.lines(conn, where, args)
    except sqlite3.OperationalError as exc:
        if "json_quote" not in str(exc):
            raise
        # An SQLite built without JSON functions: the same lines, made here.
        return [
            (e.seq, json.dumps(e.as_json(), separators=(",", ":"), ensure_ascii=False))
            for e in since(conn, query, upto)
        ]


def follow(
    conn: sqlite3.Connection,
    query: Query,
    stop: Callable[[], bool],
    read: Callable[[sqlite3.Connection, Query, int], list[Any]],
    poll: float = FOLLOW_POLL_S,
) -> Iterator[list[Any]]:
    """Batches of new events (as `read(conn, query, upto)` returns them), forever until
    `stop()`.

    Each round reads the newest seq first and then everything up to it, so a round never
    returns part of a transaction and the next round starts exactly after it. A round only
    queries when the database changed (`PRAGMA data_version`), so idle following costs one
    cheap pragma per poll.
    """
    version: int | None = None
    while not stop():
        (now_version,) = conn.execute("PRAGMA data_version").fetchone()
        if now_version == version:
            time.sleep(poll)
            continue
        version = now_version
        top = last_seq(conn)
        if top <= query.after:
            continue
        batch = read(conn, query, top)
        query = Query(top, query.since_ts, query.types, query.agent)
        if batch:
            yield batch
