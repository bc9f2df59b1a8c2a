"""The watcher under the tmux supervisor, end to end: real tmux, demo agents, crashing
runtimes. Every event type the fleet produces today comes from a real cause here, and the
log is read as a user reads it (`mosaic fleet events --json`)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from functools import partial
from pathlib import Path

from fleetkit import agent, ok, status, write_roster
from helpers import pid_alive, wait_until
from watchkit import events, last_seq, wait_event, watcher, watcher_running

ROSTER = """\
version: 1
agents:
  - name: d1
    runtime: demo
    args: ["--think", "2.5", "--approval-every", "2"]
    stuck_after: 1
  - name: c1
    runtime: crasher
runtimes:
  crasher:
    command: ["python3", "-c", "import time; time.sleep(0.3); raise SystemExit(4)"]
    processes: ["python3"]
"""


def idle(env: dict[str, str], name: str) -> bool:
    row = agent(env, name)
    return bool(row["state"] == "running" and row["activity"] == "idle")


def test_start_status_sigkill_stop(fleet_env: dict[str, str]) -> None:
    env = fleet_env
    write_roster(env, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n")
    out = ok(env, "start").out
    assert "watcher: started" in out
    first = wait_until(lambda: watcher_running(env), what="watcher running")
    assert first["last_tick_age_s"] is not None and first["last_tick_age_s"] < 5
    started = wait_event(env, "watcher_started")
    assert started["agent"] is None and started["pid"] == first["pid"]
    wait_until(lambda: idle(env, "d1"), what="d1 idle")
    row = wait_until(lambda: (r := agent(env, "d1"))["activity_since"] and r, what="since")
    assert row["activity_since"].endswith("Z") and row["last_output_age_s"] is not None
    assert "watcher: already running" in ok(env, "start").out

    os.kill(first["pid"], signal.SIGKILL)
    again = wait_until(
        lambda: (w := watcher_running(env)) and w["pid"] != first["pid"] and w, timeout=20,
        what="the watcher back with a new pid",
    )  # fmt: skip
    assert not pid_alive(first["pid"])
    wait_event(env, "watcher_started", after=started["seq"])

    out = ok(env, "stop").out
    assert "watcher: stopped" in out
    assert watcher(env) == {"state": "stopped", "pid": None, "last_tick_age_s": None}
    assert not pid_alive(again["pid"])
    assert status(env)["agents"][0]["activity_since"] is None


def test_every_event_comes_from_its_real_cause(fleet_env: dict[str, str]) -> None:
    env = fleet_env
    write_roster(env, ROSTER)
    ok(env, "start")
    wait_until(lambda: watcher_running(env), what="watcher running")

    # A crash loop: exited + restarting (hook), started (respawn), finally failed.
    failed = wait_event(env, "failed", "c1", timeout=60)
    crash = [e for e in events(env, "c1") if e["seq"] < failed["seq"]]
    kinds = [e["type"] for e in crash]
    assert kinds[0] == "started"
    assert kinds.count("exited") == 5 and all(
        e["code"] == 4 for e in crash if e["type"] == "exited"
    )
    assert kinds.count("restarting") == 4 and kinds.count("started") == 5
    delays = [e["delay_s"] for e in crash if e["type"] == "restarting"]
    assert delays == sorted(delays) and delays[0] == 0.5
    assert agent(env, "c1")["state"] == "failed"

    # A send: `sent`, the turn (busy, stuck after 1 s, idle with its length).
    wait_until(lambda: idle(env, "d1"), what="d1 idle")
    mark = last_seq(env)
    ok(env, "send", "d1", "first task")
    sent = wait_event(env, "sent", "d1", after=mark)
    assert sent["outcome"] == "accepted" and sent["chars"] == len("first task")
    busy = wait_event(env, "busy", "d1", after=mark)
    stuck = wait_event(env, "stuck", "d1", after=busy["seq"])
    assert stuck["busy_s"] >= 1
    done = wait_event(env, "idle", "d1", after=stuck["seq"])
    assert 2 <= done["busy_s"] < 10

    # The second message is answered by an approval dialog.
    ok(env, "send", "d1", "second task")
    ask = wait_event(env, "awaiting_approval", "d1", after=done["seq"])
    assert ask["prompt"] == ["Allow? (y/n)"]
    assert agent(env, "d1")["activity"] == "awaiting_approval"
    ok(env, "approve", "d1")
    wait_event(env, "idle", "d1", after=ask["seq"])
    # Both turns were busy for longer than stuck_after: one `stuck` per busy period.
    turn = [e["type"] for e in events(env, "d1", "--since", str(mark))
            if e["type"] not in ("sent",)]  # fmt: skip
    assert turn == ["busy", "stuck", "idle", "busy", "stuck", "awaiting_approval", "idle"]

    # An operator's stop: `stopped`, and no `exited` for it.
    mark = last_seq(env)
    ok(env, "stop", "d1")
    stop = wait_event(env, "stopped", "d1", after=mark)
    assert [e["type"] for e in events(env, "d1", "--since", str(mark))] == ["stopped"]
    assert stop["agent"] == "d1"
    ok(env, "stop")


def _counting_tmux(tmp: Path) -> tuple[Path, Path]:
    """A `tmux` first on PATH that logs each invocation's arguments, then runs the real one."""
    real = shutil.which("tmux")
    assert real is not None
    bindir = tmp / "bin"
    bindir.mkdir(parents=True)
    log = tmp / "tmux-calls.log"
    shim = bindir / "tmux"
    shim.write_text(f'#!/bin/sh\necho "$*" | tr "\\n" " " >> "{log}"\necho >> "{log}"\n'
                    f'exec "{real}" "$@"\n')  # fmt: skip
    shim.chmod(0o755)
    return bindir, log


def test_ticks_that_find_nothing_changed_capture_nothing(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    bindir, log = _counting_tmux(tmp_path)
    env = dict(fleet_env, PATH=f"{bindir}{os.pathsep}{fleet_env['PATH']}")
    write_roster(env, "version: 1\nagents:\n" + "".join(
        f"  - name: a{i}\n    runtime: demo\n" for i in range(5)))  # fmt: skip
    ok(env, "start")
    wait_until(lambda: watcher_running(env), what="watcher running")
    for name in [f"a{i}" for i in range(5)]:
        wait_until(partial(idle, env, name), what=f"{name} idle")
    beat = Path(env["MOSAIC_HOME"]) / "fleet" / "run" / "watcher.beat"

    def captures() -> int:
        return sum("capture-pane" in line for line in log.read_text().splitlines())

    def ticks(n: int) -> None:
        """Wait until the watcher has ticked `n` more times (its heartbeat moves each tick)."""
        seen = {beat.stat().st_mtime_ns}

        def moved() -> bool:
            seen.add(beat.stat().st_mtime_ns)
            return len(seen) > n

        wait_until(moved, interval=0.02, what=f"{n} ticks")

    def looks() -> int:
        return sum("list-panes -a" in line for line in log.read_text().splitlines())

    ticks(15)  # > 2 s of ticks: the last output of every pane is well in the past
    before, looked = captures(), looks()
    t0 = time.monotonic()
    ticks(15)
    elapsed = time.monotonic() - t0
    assert captures() == before, "an idle tick captured a pane"
    # Nothing printed: tmux is asked once a second at most, not at every tick.
    assert looks() - looked <= elapsed + 2, (looks() - looked, elapsed)
    ok(env, "send", "a0", "wake up")  # the positive control: the shim does see captures
    wait_until(lambda: captures() > before, what="the watcher captured the changed pane")
    # Never a control-mode client: one that attaches while a session comes or goes can
    # crash tmux's server, and every agent with it (docs/architecture.md).
    assert not [line for line in log.read_text().splitlines() if "-C" in line.split()]
    ok(env, "stop")
