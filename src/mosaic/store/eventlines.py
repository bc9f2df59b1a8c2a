"""The event log's read path in its lightest form: which rows a query means, and their JSON
lines assembled by SQLite. Imports nothing but `time` (callers bring their connection),
because `events --json` and `send --queue` answer from here without click
(`cli.quickevents`, `cli.quicksend`); `store.events` builds on it.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence
    from typing import Any


def iso(t: float) -> str:
    """ISO 8601 UTC with milliseconds; fixed width, so text order is time order."""
    whole = int(t // 1)
    millis = min(999, int((t - whole) * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_arg(text: str, now: float) -> tuple[int, float | None] | None:
    """`--since`: a seq (events after it) or a duration like 30s, 10m, 2h, 1h30m (events at
    or after now minus it), as (after seq, since time); None when it is neither."""
    if text.isdigit():
        return int(text), None
    total = duration(text)
    return None if total is None else (0, now - total)


def duration(text: str) -> int | None:
    """Seconds of a duration like 30s, 10m, 2h, 1d, 1h30m; None when it is not one."""
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        elif ch in _UNITS and number:
            total += int(number) * _UNITS[ch]
            number = ""
        else:
            return None
    if number or not text:
        return None
    return total


def where(
    after: int,
    since_ts: str | None,
    types: Sequence[str],
    agent: str | None,
    upto: int | None,
) -> tuple[str, list[Any]]:
    clauses = ["seq > ?"]
    args: list[Any] = [after]
    if upto is not None:
        clauses.append("seq <= ?")
        args.append(upto)
    if since_ts is not None:
        clauses.append("ts >= ?")
        args.append(since_ts)
    if types:
        clauses.append(f"type IN ({', '.join('?' * len(types))})")
        args += list(types)
    if agent is not None:
        clauses.append("agent = ?")
        args.append(agent)
    return " AND ".join(clauses), args


# {"seq":…,"ts":…,"agent":…,"type":…,<the type's fields>}: `data` is the fields' compact JSON.
LINE_SQL = (
    """'{"seq":' || seq || ',"ts":' || json_quote(ts) || ',"agent":' || """
    """CASE WHEN agent IS NULL THEN 'null' ELSE json_quote(agent) END || """
    """',"type":' || json_quote(type) || """
    """CASE WHEN data = '{}' THEN '}' ELSE ',' || substr(data, 2) END"""
)


def lines(conn: sqlite3.Connection, clause: str, args: Sequence[Any]) -> list[tuple[int, str]]:
    """(seq, JSON line) of the matching events, oldest first. Raises sqlite3.OperationalError
    where SQLite lacks its JSON functions (the caller then builds the lines itself)."""
    sql = f"SELECT seq, {LINE_SQL} FROM events WHERE {clause} ORDER BY seq"  # noqa: S608
    return conn.execute(sql, list(args)).fetchall()
