"""`mosaic fleet events`: arguments, output, and --follow across a SIGKILLed watcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetkit import agent, mosaic, ok, write_roster
from helpers import MOSAIC, wait_until
from mosaic.cli.events_cmd import parse_since
from mosaic.config.eventtypes import EventType
from mosaic.errors import UsageError
from mosaic.store import db as store_db
from mosaic.store import events as store
from watchkit import events, wait_event, watcher_running


def test_since_parsing() -> None:
    assert parse_since(None, 1000.0) == (0, None)
    assert parse_since("1234", 1000.0) == (1234, None)
    assert parse_since("10m", 1000.0) == (0, 400.0)
    assert parse_since("1h30m", 10_000.0) == (0, 10_000.0 - 5400)
    for bad in ("10x", "-5", "m", "1.5h", ""):
        with pytest.raises(UsageError):
            parse_since(bad, 0.0)


def _seed(env: dict[str, str]) -> None:
    db = Path(env["MOSAIC_HOME"]) / "fleet" / "fleet.db"
    now = time.time()
    with store_db.opened(db) as conn, store_db.write(conn):
        store.append(conn, [store.draft("d1", EventType.BUSY)], now=now - 3 * 3600)
        store.append(conn, [store.draft("d1", EventType.IDLE, busy_s=2.0)], now=now - 60)
        store.append(conn, [store.draft(None, EventType.WATCHER_STARTED, pid=7)], now=now)


def test_filters_and_formats(fleet_env: dict[str, str]) -> None:
    env = fleet_env
    write_roster(env, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n")
    assert ok(env, "events").out == ""  # no log yet: nothing, exit 0
    _seed(env)
    assert [e["seq"] for e in events(env)] == [1, 2, 3]
    assert [e["seq"] for e in events(env, "--since", "2h")] == [2, 3]
    assert [e["seq"] for e in events(env, "--since", "1")] == [2, 3]
    assert [e["seq"] for e in events(env, "d1")] == [1, 2]
    assert [e["seq"] for e in events(env, "--type", "idle", "--type", "busy")] == [1, 2]
    assert events(env, "--type", "idle") == [
        {"seq": 2, "ts": events(env)[1]["ts"], "agent": "d1", "type": "idle", "busy_s": 2.0}
    ]
    text = ok(env, "events").out.splitlines()
    assert len(text) == 3 and "d1" in text[1] and "idle" in text[1] and "busy_s=2.0" in text[1]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nobody"], "unknown agent 'nobody'"),
        (["--type", "bussy"], "unknown event type 'bussy'"),
        (["--since", "yesterday"], "--since 'yesterday'"),
    ],
)
def test_usage_errors_exit_2(fleet_env: dict[str, str], args: list[str], needle: str) -> None:
    write_roster(fleet_env, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n")
    res = mosaic(fleet_env, "events", *args)
    assert res.code == 2 and needle in res.err and "Traceback" not in res.err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_follow_exits_0_on_interrupt(fleet_env: dict[str, str], sig: int) -> None:
    write_roster(fleet_env, "version: 1\nagents: []\n")
    _seed(fleet_env)
    proc = subprocess.Popen([*MOSAIC, "fleet", "events", "--follow", "--json"], env=fleet_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # printed (and flushed) before any interrupt
    assert json.loads(first)["seq"] == 1
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err


def test_follow_across_sigkilled_watchers_misses_and_repeats_nothing(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    write_roster(env, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n"
                      "    args: ['--think', '2.5']\n")  # fmt: skip
    ok(env, "start")
    w = wait_until(lambda: watcher_running(env), what="watcher running")
    wait_until(lambda: agent(env, "d1")["activity"] == "idle", what="d1 idle")
    out = tmp_path / "follow.jsonl"
    reader = subprocess.Popen([*MOSAIC, "fleet", "events", "--follow", "--json"], env=env,
                              stdout=out.open("wb"), stderr=subprocess.PIPE)  # fmt: skip
    pids = {w["pid"]}
    for round_ in range(3):
        mark = max(e["seq"] for e in events(env))
        ok(env, "send", "d1", f"round {round_}")
        wait_event(env, "busy", "d1", after=mark)
        os.kill(w["pid"], signal.SIGKILL)  # mid-turn: the idle comes to the next watcher
        def back() -> dict[str, object] | None:
            x = watcher_running(env)
            return x if x is not None and x["pid"] not in pids else None

        w = wait_until(back, timeout=20, what="watcher back")
        pids.add(w["pid"])
        wait_event(env, "idle", "d1", after=mark)
    everything = events(env)
    wait_until(lambda: len(out.read_text().splitlines()) >= len(everything), what="reader")
    reader.send_signal(signal.SIGINT)
    _, err = reader.communicate(timeout=20)
    assert reader.returncode == 0, err
    followed = [json.loads(line) for line in out.read_text().splitlines()]
    assert followed == everything
    seqs = [e["seq"] for e in followed]
    assert seqs == list(range(1, len(seqs) + 1))
    assert sum(e["type"] == "watcher_started" for e in followed) == 4
    # Every turn's idle was reported exactly once, by whichever watcher saw it end.
    d1 = [e["type"] for e in followed if e["agent"] == "d1" and e["type"] in ("busy", "idle")]
    assert d1 == ["busy", "idle"] * 3
    ok(env, "stop")


CLICK = [sys.executable, "-c",
         "import sys; from mosaic.cli.main import main; sys.exit(main(sys.argv[1:]))"]


@pytest.mark.parametrize(
    "args",
    [
        ["events", "--json"],
        ["events", "--json", "--type", "idle", "--type", "busy"],
        ["events", "--since", "1", "--json"],
        ["events", "--json", "--since", "2h"],
        ["events", "--json", "--type", "nope"],
        ["events", "--json", "--since", "soon"],
    ],
)
def test_the_quick_json_path_answers_as_click_does(
    fleet_env: dict[str, str], args: list[str]
) -> None:
    """`events --json` skips click when it can; output and exit status are the same."""
    write_roster(fleet_env, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n")
    _seed(fleet_env)
    argv = ["fleet", "--mosaic-home", fleet_env["MOSAIC_HOME"], *args]
    quick = subprocess.run([*MOSAIC, *argv], env=fleet_env, capture_output=True, timeout=30)
    slow = subprocess.run([*CLICK, *argv], env=fleet_env, capture_output=True, timeout=30)
    assert (quick.returncode, quick.stdout, quick.stderr) == (
        slow.returncode, slow.stdout, slow.stderr
    )


def test_the_quick_path_knows_every_event_type() -> None:
    from mosaic.cli import quickevents
    from mosaic.config.eventtypes import NAMES

    assert quickevents.TYPES == NAMES
