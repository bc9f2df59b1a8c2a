"""The outbox (docs/outbox.md): messages for agents that cannot take them now, delivered by
the watcher exactly once. This facade is what the CLI (`send --queue`, `outbox`) and the web
dashboard call; each function opens the fleet database for its own short transactions.

    deliver.py   the watcher's participant: one agent at a time, under its send lock
    recover.py   pure: what an interrupted delivery came to, from evidence
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from mosaic.config.paths import Paths
from mosaic.errors import UsageError
from mosaic.store import db
from mosaic.store import outbox as store
from mosaic.store.outbox import DEFAULT_MAX_ATTEMPTS, LEFT_ROSTER, Change, Message, State

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Change",
    "Message",
    "State",
    "cancel",
    "enqueue",
    "fail_absent",
    "fail_left",
    "messages",
    "retry",
    "wait",
]

WAIT_POLL_S = 0.05
SETTLED = (State.DELIVERED, State.FAILED, State.EXPIRED, State.CANCELLED)


def check(agents: Sequence[str], text: str, ttl: float | None, max_attempts: int) -> None:
    """What every queueing path refuses (usage errors: nothing is stored)."""
    if not agents:
        raise UsageError("give at least one agent to queue the message for")
    if not text.strip():
        raise UsageError("the message is empty")
    if ttl is not None and not ttl > 0:
        raise UsageError("the ttl must be more than 0 seconds")
    if max_attempts < 1:
        raise UsageError("max attempts must be at least 1")


def enqueue(
    paths: Paths,
    agents: Sequence[str],
    text: str,
    ttl: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[int]:
    """Store one queued message per agent (names the caller checked against the roster),
    whatever the agents are doing; their ids, in the order of `agents`. The watcher
    delivers them; `wait` follows them."""
    check(agents, text, ttl, max_attempts)
    with db.opened(paths.db) as conn:
        return store.enqueue(conn, list(dict.fromkeys(agents)), text, time.time(), ttl,
                             max_attempts)  # fmt: skip


def messages(
    paths: Paths, agent: str | None = None, everything: bool = False
) -> list[Message]:
    """The messages not yet delivered nor given up on (or `everything`), oldest first;
    ttls that ran out are applied first, so what is listed is what holds now."""
    with db.opened(paths.db) as conn:
        store.expire_due(conn, time.time())
        return store.listing(conn, agent, everything)


def get(paths: Paths, ids: Sequence[int]) -> list[Message]:
    with db.opened(paths.db) as conn:
        return store.get(conn, ids)


def wait(paths: Paths, ids: Sequence[int], timeout: float) -> list[Message]:
    """Block until every message is settled (delivered, failed, expired, cancelled) or the
    timeout; the messages as they stand then. Reads only when the database changed."""
    end = time.monotonic() + timeout
    with db.opened(paths.db) as conn:
        version = None
        while True:
            (now_version,) = conn.execute("PRAGMA data_version").fetchone()
            if now_version != version:
                version = now_version
                store.expire_due(conn, time.time())
                found = store.get(conn, ids)
                if all(m.state in SETTLED for m in found):
                    return found
            left = end - time.monotonic()
            if left <= 0:
                return store.get(conn, ids)
            time.sleep(min(WAIT_POLL_S, left))


def _known(paths: Paths, ids: Sequence[int]) -> None:
    found = {m.id for m in get(paths, ids)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise UsageError(f"no outbox message with id {', '.join(missing)}")


def cancel(paths: Paths, ids: Sequence[int]) -> list[Change]:
    """Cancel queued or failed messages; every id must exist (else nothing changes)."""
    _known(paths, ids)
    with db.opened(paths.db) as conn:
        return store.cancel(conn, list(dict.fromkeys(ids)), time.time())


def retry(paths: Paths, ids: Sequence[int]) -> list[Change]:
    """Queue failed messages again (fresh attempts), or try queued ones without waiting
    out their backoff; every id must exist (else nothing changes)."""
    _known(paths, ids)
    with db.opened(paths.db) as conn:
        return store.retry(conn, list(dict.fromkeys(ids)), time.time())


def fail_left(paths: Paths, names: Sequence[str], reason: str = LEFT_ROSTER) -> list[Message]:
    """Messages still waiting for agents that left the roster become `failed` with
    `reason` (with a `delivery_failed` event each), never silently dropped."""
    if not names or not paths.db.exists():
        return []
    with db.opened(paths.db) as conn:
        return store.fail_agents(conn, list(names), reason, time.time())


def fail_absent(paths: Paths, roster_names: Sequence[str], reason: str = LEFT_ROSTER
                ) -> list[Message]:  # fmt: skip
    """`fail_left` for every agent with a waiting message that the roster does not name."""
    if not paths.db.exists():
        return []
    with db.opened(paths.db) as conn:
        return store.fail_absent(conn, roster_names, reason, time.time())
