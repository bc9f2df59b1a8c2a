"""The outbox's rows in their lightest form: the states, storing new messages, and how a
row is shown (JSON and text). Imports nothing but `eventlines` (callers bring their
connection), because `send --queue` stores its messages from here without click
(`cli.quicksend`); `store.outbox` builds the state machine on it (docs/outbox.md).
"""

from __future__ import annotations

from mosaic.store.eventlines import duration, iso

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence
    from typing import Any

SCHEMA_VERSION = 3
"""The schema that has the outbox: kept equal to len(db.MIGRATIONS) (tests check), since
importing `db` would cost the fast path more than the rest of it."""

QUEUED = "queued"
DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"
EXPIRED = "expired"
CANCELLED = "cancelled"
STATES = (QUEUED, DELIVERING, DELIVERED, FAILED, EXPIRED, CANCELLED)
PENDING = (QUEUED, DELIVERING)
"""Not yet delivered, nor given up on: what `outbox` lists by default."""

DEFAULT_MAX_ATTEMPTS = 5

# What listing and the JSON rows read, in this order.
SHOWN = ("id", "agent", "state", "attempts", "queued_at", "delivered_at", "expires_at",
         "reason", "text")  # fmt: skip


def parse_ttl(text: str) -> int | None:
    """`--ttl`: a duration (30s, 10m, 2h, 1d, 1h30m) or whole seconds, more than 0; None
    when it is neither."""
    seconds = int(text) if text.isdigit() else duration(text)
    return seconds if seconds else None


def insert(
    conn: sqlite3.Connection,
    agents: Sequence[str],
    text: str,
    now: float,
    ttl: float | None,
    max_attempts: int,
) -> list[tuple[Any, ...]]:
    """One queued row per agent, in the caller's write transaction; each as `SHOWN`, in
    order (what was stored, without reading it back)."""
    expires = None if ttl is None else now + ttl
    rows = []
    for agent in agents:
        cur = conn.execute(
            "INSERT INTO outbox (agent, text, state, max_attempts, queued_at, expires_at, "
            "next_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (agent, text, QUEUED, max_attempts, now, expires, now),
        )
        rows.append((int(cur.lastrowid or 0), agent, QUEUED, 0, now, None, expires, None, text))
    return rows


def first_line(text: str) -> str:
    """The message's first line with something on it: what a listing shows of it."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def as_json(row: Sequence[Any]) -> dict[str, Any]:
    """One message as `outbox --json` and `send --queue --json` print it."""
    ident, agent, state, attempts, queued, delivered, expires, reason, text = row
    return {
        "id": ident,
        "agent": agent,
        "state": state,
        "attempts": attempts,
        "queued_at": iso(queued),
        "delivered_at": None if delivered is None else iso(delivered),
        "expires_at": None if expires is None else iso(expires),
        "first_line": first_line(text),
        "reason": reason,
    }


def queued_line(ident: int | str, agent: str) -> str:
    """`send --queue`'s line for one message just stored (a host's id is `HOST:N`)."""
    return f"{agent}: queued #{ident}"
