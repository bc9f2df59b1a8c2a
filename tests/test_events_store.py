"""The event log (store/events.py) on a real SQLite file: order, filters, JSON lines,
retention, and many processes at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from helpers import MOSAIC, wait_until
from mosaic.config.eventtypes import EventType
from mosaic.store import db, events
from mosaic.store.events import Query, draft


def _db(tmp_path: Path) -> Path:
    return tmp_path / "fleet" / "fleet.db"


def test_seq_increases_and_lines_are_the_events_json(tmp_path: Path) -> None:
    path = _db(tmp_path)
    events.record(path, [draft("a1", EventType.STARTED, pid=42), draft(None, EventType.FAILED)])
    events.record(path, [draft("a1", EventType.AWAITING_APPROVAL, prompt=['Allow "x"?', "é ✓"])])
    with db.opened(path) as conn:
        got = events.since(conn, Query())
        lines = events.json_lines(conn, Query())
    assert [e.seq for e in got] == [1, 2, 3]
    assert [e.type for e in got] == ["started", "failed", "awaiting_approval"]
    assert got[1].agent is None
    for event, (seq, line) in zip(got, lines, strict=True):
        assert seq == event.seq
        assert json.loads(line) == event.as_json()
        assert list(json.loads(line))[:4] == ["seq", "ts", "agent", "type"]
    assert json.loads(lines[2][1])["prompt"] == ['Allow "x"?', "é ✓"]
    assert got[0].ts.endswith("Z") and len(got[0].ts) == len("2024-01-01T00:00:00.000Z")


def test_unknown_fields_are_a_bug_not_a_row(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no field"):
        draft("a", EventType.BUSY, colour="red").data()


def test_filters(tmp_path: Path) -> None:
    path = _db(tmp_path)
    with db.opened(path) as conn, db.write(conn):
        events.append(conn, [draft("a1", EventType.BUSY)], now=1000.0)
        events.append(conn, [draft("a2", EventType.BUSY)], now=2000.0)
        events.append(conn, [draft("a1", EventType.IDLE, busy_s=1.0)], now=3000.0)
    with db.opened(path) as conn:
        assert [e.seq for e in events.since(conn, Query(agent="a1"))] == [1, 3]
        assert [e.seq for e in events.since(conn, Query(types=("idle",)))] == [3]
        assert [e.seq for e in events.since(conn, Query(after=1))] == [2, 3]
        assert [e.seq for e in events.since(conn, Query(since_ts=events.iso(2000.0)))] == [2, 3]


def test_retention_keeps_a_week_but_at_least_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "FLOOR", 5)
    monkeypatch.setattr(events, "CAP", 12)
    path = _db(tmp_path)
    now = 10 * 86400.0
    with db.opened(path) as conn:
        with db.write(conn):
            for i in range(8):  # old enough to go, unless among the newest 5
                events.append(conn, [draft("a", EventType.BUSY)], now=now - 8 * 86400 + i)
            for i in range(2):
                events.append(conn, [draft("a", EventType.BUSY)], now=now - 60 + i)
        assert events.prune(conn, now) == 5
        assert [e.seq for e in events.since(conn, Query())] == [6, 7, 8, 9, 10]
        with db.write(conn):  # the cap holds on every append, whatever the age
            for _ in range(20):
                events.append(conn, [draft("a", EventType.BUSY)], now=now)
        seqs = [e.seq for e in events.since(conn, Query())]
        assert len(seqs) == 12 and seqs[-1] == 30 and seqs == list(range(19, 31))


_WRITER = """
import sys
from pathlib import Path
from mosaic.config.eventtypes import EventType
from mosaic.store import events
path, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(n):
    assert events.record(path, [events.draft(who, EventType.SENT, outcome="accepted", chars=i)])
"""


def test_many_writers_and_followers_see_every_event_once(
    tmp_path: Path, fleet_env: dict[str, str]
) -> None:
    """Four writer processes and three `events --follow --json` readers at once: no reader
    misses, repeats or reorders an event, and nobody sees "database is locked"."""
    env = fleet_env
    path = Path(env["MOSAIC_HOME"]) / "fleet" / "fleet.db"
    events.record(path, [draft(None, EventType.WATCHER_STARTED, pid=1)])
    outs = [tmp_path / f"r{i}.jsonl" for i in range(3)]
    readers = [
        subprocess.Popen([*MOSAIC, "fleet", "events", "--follow", "--json"], env=env,
                         stdout=out.open("wb"), stderr=subprocess.PIPE)
        for out in outs
    ]
    n, writers = 150, 4
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"w{i}", str(n)],
                         env=env, stderr=subprocess.PIPE)
        for i in range(writers)
    ]
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err.decode()
        assert b"locked" not in err
    total = 1 + n * writers

    def lines(out: Path) -> list[dict[str, object]]:
        return [json.loads(x) for x in out.read_text().splitlines() if x.strip()]

    def complete(out: Path) -> bool:
        return len(lines(out)) >= total

    for out in outs:
        wait_until(partial(complete, out), timeout=30, what=f"{out} complete")
    for r in readers:
        r.terminate()
    for r, out in zip(readers, outs, strict=True):
        _, err = r.communicate(timeout=10)
        assert r.returncode == 0, err.decode()
        assert b"locked" not in err and b"Traceback" not in err
        got = lines(out)
        assert [e["seq"] for e in got] == list(range(1, total + 1))
        per_writer = {f"w{i}": [e["chars"] for e in got if e["agent"] == f"w{i}"]
                      for i in range(writers)}  # fmt: skip
        assert all(v == list(range(n)) for v in per_writer.values())


def test_follow_reads_only_when_the_database_changed(tmp_path: Path) -> None:
    path = _db(tmp_path)
    events.record(path, [draft("a", EventType.BUSY)])
    reads: list[int] = []
    deadline = time.monotonic() + 1.0

    def read(conn: object, q: Query, upto: int) -> list[int]:
        reads.append(upto)
        return [upto]

    with db.opened(path) as conn:
        batches = list(events.follow(conn, Query(), lambda: time.monotonic() > deadline, read,
                                     poll=0.02))  # fmt: skip
    assert batches == [[1]] and reads == [1]  # polled ~50 times, read once
