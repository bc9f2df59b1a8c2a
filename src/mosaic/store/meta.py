"""Fleet-wide facts in the fleet database (table `meta`): small JSON values by key."""

from __future__ import annotations

import json
from pathlib import Path

from mosaic.store import db

# `typing` costs a measurable share of `status`'s start-up; annotations only need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def get(path: Path, key: str) -> Any:
    """The value stored under `key`, or None. Never creates the database."""
    if not path.exists():
        return None
    with db.opened(path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    try:
        return json.loads(row[0])
    except ValueError:
        return None


def put(path: Path, key: str, value: Any) -> None:
    with db.opened(path) as conn, db.write(conn):
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )


def delete(path: Path, key: str) -> None:
    if not path.exists():
        return
    with db.opened(path) as conn, db.write(conn):
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))
