"""The outbox's table and state machine on a real SQLite database (store/outbox.py): every
transition, the lease that fences the deliverer's, and the events they leave."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosaic.store import db, events, outboxrows
from mosaic.store import outbox as store
from mosaic.store.outbox import State


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = db.connect(tmp_path / "fleet.db")
    yield c
    c.close()


def _events(conn: sqlite3.Connection) -> list[tuple[str | None, str, dict[str, object]]]:
    return [(e.agent, e.type, dict(e.fields)) for e in events.since(conn, events.Query())]


def test_the_fast_path_knows_the_current_schema() -> None:
    assert len(db.MIGRATIONS) == outboxrows.SCHEMA_VERSION
    assert tuple(str(s) for s in State) == outboxrows.STATES


def test_queued_in_order_and_listed(conn: sqlite3.Connection) -> None:
    ids = store.enqueue(conn, ["a", "b"], "first line\nsecond", 100.0, ttl=60)
    more = store.enqueue(conn, ["a"], "  \n  next one", 101.0)
    assert ids == [ids[0], ids[0] + 1] and more == [ids[1] + 1]
    assert [m.id for m in store.listing(conn)] == [*ids, *more]
    assert [m.id for m in store.listing(conn, "a")] == [ids[0], more[0]]
    head = store.head(conn, "a")
    assert head is not None and head.id == ids[0] and head.state is State.QUEUED
    assert head.expires_at == 160.0 and head.max_attempts == 5 and not head.typed
    row = head.as_json()
    assert row == {
        "id": ids[0], "agent": "a", "state": "queued", "attempts": 0,
        "queued_at": "1970-01-01T00:01:40.000Z", "delivered_at": None,
        "expires_at": "1970-01-01T00:02:40.000Z", "first_line": "first line", "reason": None,
    }  # fmt: skip
    assert store.get(conn, [more[0]])[0].as_json()["first_line"] == "next one"
    assert sorted(store.pending_agents(conn)) == ["a", "b"]


def test_a_delivery_is_fenced_by_the_lease(conn: sqlite3.Connection) -> None:
    [ident] = store.enqueue(conn, ["a"], "hello", 1.0)
    old = store.acquire(conn, pid=111, now=2.0)
    new = store.acquire(conn, pid=222, now=3.0)
    assert new == old + 1 and store.current_epoch(conn) == new
    message = store.get(conn, [ident])[0]
    # The stale watcher may not begin, so it types nothing.
    assert not store.begin(conn, message, old, 4.0, position=(7, 10), process="9:9")
    assert store.get(conn, [ident])[0].state is State.QUEUED
    assert store.begin(conn, message, new, 4.0, position=(7, 10), process="9:9")
    began = store.get(conn, [ident])[0]
    assert (began.state, began.attempts, began.epoch, began.typed) == (
        State.DELIVERING, 1, new, True)  # fmt: skip
    assert (began.log_inode, began.log_offset, began.process) == (7, 10, "9:9")
    # A newer watcher takes over; the one that began can no longer settle it...
    newest = store.acquire(conn, pid=333, now=5.0)
    assert not store.settle(conn, began, new, 6.0, State.DELIVERED)
    assert store.get(conn, [ident])[0].state is State.DELIVERING
    # ...while the current one can: pressing only the submit key keeps the position.
    assert store.begin(conn, began, newest, 6.0, position=None, process=None)
    again = store.get(conn, [ident])[0]
    assert (again.attempts, again.log_inode, again.log_offset, again.process) == (
        2, 7, 10, "9:9")  # fmt: skip
    assert store.settle(conn, again, newest, 7.0, State.DELIVERED)
    done = store.get(conn, [ident])[0]
    assert (done.state, done.delivered_at, done.typed) == (State.DELIVERED, 7.0, False)
    assert _events(conn) == [("a", "delivered", {"id": ident})]
    # Settled is settled: no second `delivered`.
    assert not store.settle(conn, again, newest, 8.0, State.DELIVERED)
    assert len(_events(conn)) == 1


def test_requeue_and_fail_after_attempts(conn: sqlite3.Connection) -> None:
    [ident] = store.enqueue(conn, ["a"], "hello", 1.0, max_attempts=2)
    epoch = store.acquire(conn, pid=1, now=1.0)
    m = store.get(conn, [ident])[0]
    assert store.begin(conn, m, epoch, 2.0, position=(1, 0), process="p")
    m = store.get(conn, [ident])[0]
    assert store.settle(conn, m, epoch, 3.0, State.QUEUED, "not accepted", next_at=5.0)
    m = store.get(conn, [ident])[0]
    # Queued again, but its text may sit in the input: the next attempt decides first.
    assert (m.state, m.next_at, m.typed, m.reason) == (State.QUEUED, 5.0, True, "not accepted")
    assert store.settle(conn, m, epoch, 6.0, State.FAILED, "gave up")
    m = store.get(conn, [ident])[0]
    assert (m.state, m.finished_at, m.reason) == (State.FAILED, 6.0, "gave up")
    assert _events(conn) == [("a", "delivery_failed", {"id": ident, "reason": "gave up"})]
    with pytest.raises(ValueError):
        store.settle(conn, m, epoch, 7.0, State.CANCELLED)


def test_cancel_and_retry_act_on_queued_and_failed_only(conn: sqlite3.Connection) -> None:
    q, f, d = store.enqueue(conn, ["a", "b", "c"], "hi", 1.0)
    epoch = store.acquire(conn, pid=1, now=1.0)
    for ident, to in ((f, State.FAILED), (d, State.DELIVERED)):
        m = store.get(conn, [ident])[0]
        assert store.begin(conn, m, epoch, 2.0, position=(1, 0), process="p")
        assert store.settle(conn, store.get(conn, [ident])[0], epoch, 3.0, to, "x")
    changes = store.retry(conn, [q, f, d], 10.0)
    assert [(c.id, c.state, c.error) for c in changes[:2]] == [
        (q, State.QUEUED, None), (f, State.QUEUED, None)]  # fmt: skip
    assert changes[2].state is State.DELIVERED
    assert changes[2].error == (
        f"message {d} is delivered; only queued or failed messages can be retried"
    )
    retried = store.get(conn, [f])[0]
    assert (retried.attempts, retried.next_at, retried.reason) == (0, 10.0, None)
    assert retried.typed  # it was typed once: the next attempt looks before it types
    changes = store.cancel(conn, [q, d], 11.0)
    assert changes[0].state is State.CANCELLED and changes[0].error is None
    assert "only queued or failed messages can be cancelled" in (changes[1].error or "")
    assert store.get(conn, [q])[0].state is State.CANCELLED
    # A cancelled message can be neither begun nor retried.
    assert not store.begin(conn, store.get(conn, [q])[0], epoch, 12.0, position=None,
                           process=None)  # fmt: skip
    assert store.retry(conn, [q], 12.0)[0].error is not None


def test_ttl_expires_only_queued_messages(conn: sqlite3.Connection) -> None:
    a, b = store.enqueue(conn, ["a", "b"], "hi", 1.0, ttl=10)
    [c] = store.enqueue(conn, ["c"], "no ttl", 1.0)
    epoch = store.acquire(conn, pid=1, now=1.0)
    assert store.begin(conn, store.get(conn, [b])[0], epoch, 2.0, position=(1, 0),
                       process="p")  # fmt: skip
    assert store.expire_due(conn, 10.9) == []
    gone = store.expire_due(conn, 11.0)
    assert [m.id for m in gone] == [a]
    assert store.get(conn, [a])[0].state is State.EXPIRED
    assert store.get(conn, [b])[0].state is State.DELIVERING  # under way: not expired
    assert store.get(conn, [c])[0].state is State.QUEUED
    assert _events(conn) == [("a", "delivery_failed", {"id": a, "reason": "expired"})]
    # A queued message past its ttl can no longer be begun.
    [late] = store.enqueue(conn, ["a"], "late", 20.0, ttl=1)
    assert not store.begin(conn, store.get(conn, [late])[0], epoch, 21.5, position=None,
                           process=None)  # fmt: skip


def test_agents_that_left_fail_with_a_reason(conn: sqlite3.Connection) -> None:
    a1, b1 = store.enqueue(conn, ["a", "b"], "one", 1.0)
    [a2] = store.enqueue(conn, ["a"], "two", 2.0)
    gone = store.fail_absent(conn, ["b"], store.LEFT_ROSTER, 3.0)
    assert [m.id for m in gone] == [a1, a2]
    for ident in (a1, a2):
        m = store.get(conn, [ident])[0]
        assert (m.state, m.reason) == (State.FAILED, "the agent left the roster")
    assert store.get(conn, [b1])[0].state is State.QUEUED
    assert [e[2] for e in _events(conn)] == [
        {"id": a1, "reason": "the agent left the roster"},
        {"id": a2, "reason": "the agent left the roster"},
    ]
    assert store.fail_absent(conn, ["b"], store.LEFT_ROSTER, 4.0) == []


def test_the_migration_upgrades_a_version_2_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path, isolation_level=None)
    for index in range(2):
        for statement in db._statements(db.MIGRATIONS[index]):
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 2")
    raw.execute("INSERT INTO events (ts, agent, type, data) VALUES ('t', 'a', 'busy', '{}')")
    raw.close()
    conn = db.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (3,)
    assert store.enqueue(conn, ["a"], "hi", 1.0) == [1]
    assert events.last_seq(conn) == 1
    conn.close()
