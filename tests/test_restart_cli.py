"""`mosaic fleet restart` under the restart lock, with real processes and real tmux."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fleetkit import agent, ok, sessions, shell_roster, status, write_roster
from helpers import MOSAIC, wait_until
from mosaic.supervise.restartlock import current_holder, restart_lock
from test_restartlock import blocked_on

# A runtime that takes $STOP_DELAY seconds to exit after SIGTERM (cleaning up, say).
SLOW_STOP = [
    "python3", "-c",
    "import os, signal, sys, time\n"
    "def bye(*_):\n    time.sleep(float(os.environ['STOP_DELAY'])); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "while True: time.sleep(60)\n",
]  # fmt: skip


def slow_stopping_roster(delays: list[float]) -> str:
    """Agents s1..sN whose stops end one after another, `delays` seconds after SIGTERM."""
    agents = "".join(
        f"  - name: s{i}\n    runtime: slow\n    env: {{STOP_DELAY: '{d}'}}\n"
        for i, d in enumerate(delays, 1)
    )
    return (
        f"version: 1\nagents:\n{agents}runtimes:\n  slow:\n"
        f"    command: {json.dumps(SLOW_STOP)}\n    processes: [python3]\n"
    )


def restart_outlasting_max_wait(env: dict[str, str], names: list[str], max_wait: float) -> None:
    """A restart that holds the lock longer than a waiting restart's max wait, but never
    that long between two agents: the waiter must wait it out, not override it."""
    lock = Path(env["MOSAIC_HOME"]) / "fleet" / "run" / "restart.lock"
    first = subprocess.Popen([*MOSAIC, "fleet", "restart"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    second: subprocess.Popen[bytes] | None = None

    def held_by_first() -> bool:
        holder = current_holder(lock)
        return holder is not None and holder.pid == first.pid

    try:
        wait_until(held_by_first, timeout=30, interval=0.01, what="first restart inside")
        waiter_env = dict(env, MOSAIC_FLEET_RESTART_LOCK_MAX_WAIT=str(max_wait))
        second = subprocess.Popen([*MOSAIC, "fleet", "restart"], env=waiter_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        pid = second.pid
        wait_until(lambda: blocked_on(pid, lock), timeout=30, interval=0.01,
                   what="second restart waiting")  # fmt: skip
        waiting_since = last_seen = time.monotonic()
        while held_by_first():
            last_seen = time.monotonic()
            assert last_seen - waiting_since < 90, "the first restart never ended"
            time.sleep(0.02)
        # Otherwise the waiter never had a reason to override, and this test proves nothing.
        assert last_seen - waiting_since > max_wait
        out, err = first.communicate(timeout=60)
        _, second_err = second.communicate(timeout=90)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert first.returncode == 0, err.decode()  # never SIGKILLed by the waiter
    assert second.returncode == 0, second_err.decode()
    assert b"overrid" not in second_err
    assert b"s4: stopped" in out
    assert sessions(env) == names


def _all_running(env: dict[str, str], names: list[str]) -> bool:
    rows = {r["name"]: r for r in status(env)["agents"]}
    return all(rows[n]["state"] == "running" for n in names)


def test_six_concurrent_restarts_leave_one_session_per_agent(fleet_env: dict[str, str]) -> None:
    names = ["a1", "a2", "a3"]
    write_roster(fleet_env, shell_roster(names))
    ok(fleet_env, "start")
    procs = [
        subprocess.Popen([*MOSAIC, "fleet", "restart"], env=fleet_env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(6)
    ]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err.decode()
        assert b"overrid" not in err  # nobody had to break in: each waited its turn
    assert sessions(fleet_env) == names
    wait_until(lambda: _all_running(fleet_env, names), timeout=15)
    # Exactly one pane per agent, each with its runtime alive.
    assert len({r["pid"] for r in status(fleet_env)["agents"]}) == 3


def test_sigkilled_restart_does_not_delay_the_next(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1", "a2"]))
    ok(fleet_env, "start")
    lock = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "run" / "restart.lock"
    victim = subprocess.Popen([*MOSAIC, "fleet", "restart"], env=fleet_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wait_until(lambda: (h := current_holder(lock)) is not None and h.pid == victim.pid,
               timeout=30, interval=0.005, what="victim inside the restart")  # fmt: skip
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    env = dict(fleet_env, MOSAIC_FLEET_RESTART_LOCK_MAX_WAIT="60")
    res = subprocess.run([*MOSAIC, "fleet", "restart"], env=env, capture_output=True,
                         timeout=50)  # fmt: skip
    # Had it waited for the dead owner it would have needed the 60 s override and warned.
    assert res.returncode == 0, res.stderr.decode()
    assert b"overrid" not in res.stderr
    assert sessions(fleet_env) == ["a1", "a2"]
    wait_until(lambda: _all_running(fleet_env, ["a1", "a2"]), timeout=15)


def test_status_reports_a_restart_in_progress(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    lock = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "run" / "restart.lock"
    assert status(fleet_env)["restart_in_progress"] is None
    with restart_lock(lock):
        doc = status(fleet_env)  # status never waits on the restart lock
        assert doc["restart_in_progress"]["pid"] == os.getpid()
        assert "restart in progress (pid" in ok(fleet_env, "status").out
        # start and stop do not wait on it either.
        ok(fleet_env, "start")
        assert agent(fleet_env, "a1")["state"] in ("running", "starting")
        ok(fleet_env, "stop")
    assert status(fleet_env)["restart_in_progress"] is None


def test_a_long_restart_that_keeps_going_is_not_overridden(fleet_env: dict[str, str]) -> None:
    names = ["s1", "s2", "s3", "s4"]
    write_roster(fleet_env, slow_stopping_roster([0.7, 1.4, 2.1, 2.8]))
    ok(fleet_env, "start")
    wait_until(lambda: _all_running(fleet_env, names), timeout=15)
    restart_outlasting_max_wait(fleet_env, names, max_wait=1.5)
    wait_until(lambda: _all_running(fleet_env, names), timeout=15)


def test_the_tmux_supervisor_reports_progress_for_each_agent(
    fleet_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stops run in parallel and end 0.7 s apart: one report as each ends; one per launch."""
    from mosaic.config.paths import resolve
    from mosaic.fleet import open_fleet
    from mosaic.supervise.tmux import supervisor

    names = ["s1", "s2", "s3", "s4"]
    write_roster(fleet_env, slow_stopping_roster([0.7, 1.4, 2.1, 2.8]))
    for key, value in fleet_env.items():
        monkeypatch.setenv(key, value)  # tmux reads the process environment
    monkeypatch.delenv("TMUX", raising=False)
    fleet = open_fleet(resolve(env=fleet_env), fleet_env, deciding=True)
    agents = list(fleet.roster.agents)
    seen: list[float] = []
    supervisor.start(fleet, agents, lambda: seen.append(time.monotonic()))
    assert len(seen) == 4
    wait_until(lambda: _all_running(fleet_env, names), timeout=15)
    seen.clear()
    t0 = time.monotonic()
    supervisor.stop(fleet, agents, False, lambda: seen.append(time.monotonic()))
    assert len(seen) == 4
    # As each stop ended (0.7 s apart), not all at once when the last one did (2.8 s).
    assert seen[0] - t0 < 2.0 and seen[-1] - seen[0] > 1.5, [t - t0 for t in seen]
    assert sessions(fleet_env) == []
