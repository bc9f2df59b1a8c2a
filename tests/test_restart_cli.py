"""`mosaic fleet restart` under the restart lock, with real processes and real tmux."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from fleetkit import agent, ok, sessions, shell_roster, status, write_roster
from helpers import MOSAIC, wait_until
from mosaic.supervise.restartlock import current_holder, restart_lock


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
