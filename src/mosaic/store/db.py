"""Opening the fleet database and keeping its schema current.

One schema for every table, upgraded in place by `MIGRATIONS` (numbered by
`PRAGMA user_version`), so a newer mosaic can open a database an older one wrote and
several processes of the same version agree on it. Connections are in autocommit mode;
writers group their statements with `write()`, which takes the write lock at once
(`BEGIN IMMEDIATE`) so a read-then-write can never be overtaken by another writer.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from mosaic.base.fs import ensure_dir
from mosaic.errors import OperationFailed

BUSY_TIMEOUT_MS = 30_000

# Each entry upgrades the schema from version i to i + 1; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    # 1: supervision records and fleet-wide facts.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE agents (name TEXT PRIMARY KEY, record TEXT NOT NULL);
    """,
    # 2: the event log (store/events.py), the watcher's view of each agent
    # (store/watchview.py) and delivery cursors (the notify cursor). AUTOINCREMENT: a seq is
    # never handed out twice, even after the newest rows were deleted.
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        agent TEXT,
        type TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_agent ON events (agent, seq);
    CREATE TABLE watch_view (
        agent TEXT PRIMARY KEY,
        pid INTEGER,
        activity TEXT NOT NULL,
        since REAL NOT NULL,
        observed TEXT NOT NULL,
        observed_since REAL NOT NULL,
        last_output REAL,
        turn_since REAL,
        busy_since REAL,
        stuck_sent INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    """,
    # 3: the outbox (store/outbox.py, docs/outbox.md): one row per queued message, and the
    # deliverers' lease, whose epoch fences every delivery transition.
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        text TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        queued_at REAL NOT NULL,
        expires_at REAL,
        next_at REAL NOT NULL,
        began_at REAL,
        delivered_at REAL,
        finished_at REAL,
        epoch INTEGER,
        log_inode INTEGER,
        log_offset INTEGER,
        process TEXT,
        typed INTEGER NOT NULL DEFAULT 0,
        reason TEXT
    );
    CREATE INDEX outbox_pending ON outbox (state, agent, id);
    CREATE INDEX outbox_agent ON outbox (agent, id);
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        epoch INTEGER NOT NULL,
        pid INTEGER,
        since REAL NOT NULL
    );
    """,
)


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection with WAL, a busy timeout and the schema up to date."""
    ensure_dir(path.parent)
    if not path.exists():
        # Created 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed transaction survives a power cut (the outbox's exactly-once
        # depends on "committed before the keystrokes").
        conn.execute("PRAGMA synchronous = FULL")
        _migrate(conn)
    except sqlite3.Error as exc:
        raise OperationFailed(f"fleet database {path}: {exc}") from None
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version >= len(MIGRATIONS):
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this mosaic knows ({len(MIGRATIONS)})"
            )
        return
    with write(conn):
        # Re-read under the write lock: another process may have migrated meanwhile.
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for index in range(version, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[index]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, holding the write lock from its first statement."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()
