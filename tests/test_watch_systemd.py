"""The watcher under the systemd supervisor, against a real private user manager
(systemd_harness): installed, started and stopped with the fleet, back after SIGKILL, and
the supervision events recorded where systemd's side knows them (unitexec, the watcher)."""

from __future__ import annotations

import os
import signal

import pytest

from fleetkit import agent, ok, write_roster
from helpers import pid_alive, wait_until
from mosaic.supervise.systemd import units
from systemd_harness import UserManager, user_manager
from watchkit import events, wait_event, watcher, watcher_running

__all__ = ["user_manager"]  # the fixture, imported for pytest

W = units.WATCHER_UNIT


@pytest.fixture
def env(user_manager: UserManager, fleet_env: dict[str, str]) -> dict[str, str]:
    e = user_manager.env_for(fleet_env)
    e["MOSAIC_FLEET_SUPERVISOR"] = "systemd"
    return e


ROSTER = """\
version: 1
agents:
  - name: d1
    runtime: demo
    args: ["--think", "2"]
  - name: c1
    runtime: crasher
  - name: c2
    runtime: flash
runtimes:
  crasher:
    command: ["python3", "-c", "import time; time.sleep(0.3); raise SystemExit(4)"]
    processes: ["python3"]
  flash:
    command: ["sh", "-c", "sleep 0.1; exit 4"]
"""


def test_watcher_unit_lifecycle_and_events(user_manager: UserManager, env: dict[str, str]) -> None:
    m = user_manager
    write_roster(env, ROSTER)
    ok(env, "install")
    assert m.prop(W, "UnitFileState") == "enabled"
    out = ok(env, "start").out
    assert "watcher: started" in out
    assert m.prop(W, "ActiveState") == "active"
    first = wait_until(lambda: watcher_running(env), timeout=20, what="watcher running")
    assert int(m.prop(W, "MainPID")) == first["pid"]

    # SIGKILL: systemd brings it back (Restart=always).
    os.kill(first["pid"], signal.SIGKILL)
    again = wait_until(
        lambda: (w := watcher_running(env)) and w["pid"] != first["pid"] and w, timeout=30,
        what="watcher back under systemd",
    )  # fmt: skip
    assert int(m.prop(W, "MainPID")) == again["pid"]
    assert sum(e["type"] == "watcher_started" for e in events(env)) == 2

    # A crash loop: exited/restarting from `unitexec exited`, started from `unitexec run`,
    # failed from the watcher asking systemd.
    failed = wait_event(env, "failed", "c1", timeout=90)
    crash = [e["type"] for e in events(env, "c1") if e["seq"] < failed["seq"]]
    assert crash[0] == "started" and "exited" in crash and "restarting" in crash
    assert all(e["code"] == 4 for e in events(env, "c1", "--type", "exited"))
    # One that dies at once (0.1 s), printing nothing, is seldom up when the watcher looks
    # (once a second when no screen changes): its unit's `exited` events tell it to ask.
    wait_event(env, "failed", "c2", timeout=90)

    # Activity and the operator's stop.
    wait_until(lambda: agent(env, "d1")["activity"] == "idle", timeout=20, what="d1 idle")
    ok(env, "send", "d1", "hello")
    wait_event(env, "idle", "d1", timeout=30)
    mark = max(e["seq"] for e in events(env))
    ok(env, "stop", "d1")
    wait_event(env, "stopped", "d1", after=mark)
    assert [e["type"] for e in events(env, "d1", "--since", str(mark))] == ["stopped"]

    out = ok(env, "stop").out
    assert m.prop(W, "ActiveState") == "inactive"
    assert watcher(env)["state"] == "stopped"
    assert not pid_alive(again["pid"])
    assert "holder: stopped" in out
