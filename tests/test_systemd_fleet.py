"""The systemd supervisor end to end, against a real private user manager (systemd_harness).

Everything goes through the CLI as a user would (`mosaic fleet install`, then start, stop,
restart, status), and systemd itself is asked what it now runs: the point is that the same
commands behave the same as under the tmux supervisor, while systemd does the restarting.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from fleetkit import mosaic, ok, sessions, shell_roster, status, tmux, write_roster
from helpers import pid_alive, wait_until
from mosaic.supervise.systemd import units
from systemd_harness import UserManager, user_manager
from test_restart_cli import restart_outlasting_max_wait, slow_stopping_roster

__all__ = ["user_manager"]  # the fixture, imported for pytest

HOLDER = units.HOLDER_UNIT
# Exits 3 at once: a runtime in a crash loop.
CRASH = ["python3", "-c", "raise SystemExit(3)"]


@pytest.fixture
def env(user_manager: UserManager, fleet_env: dict[str, str]) -> dict[str, str]:
    e = user_manager.env_for(fleet_env)
    e["MOSAIC_FLEET_SUPERVISOR"] = "systemd"
    return e


def unit(name: str) -> str:
    return units.agent_unit(name)


def active(m: UserManager, u: str) -> str:
    return m.prop(u, "ActiveState")


def row(env: dict[str, str], name: str) -> dict[str, Any]:
    for r in status(env)["agents"]:
        if r["name"] == name:
            return dict(r)
    raise AssertionError(f"{name} not in status")


def running(env: dict[str, str], name: str) -> dict[str, Any] | None:
    r = row(env, name)
    return r if r["state"] == "running" and r["pid"] else None


def installed(env: dict[str, str], body: str) -> None:
    write_roster(env, body)
    ok(env, "install")


def test_start_status_stop_all(user_manager: UserManager, env: dict[str, str]) -> None:
    m = user_manager
    installed(env, shell_roster(["a1", "a2"]))
    out = ok(env, "start").out
    assert "a1: started" in out and "a2: started" in out, out
    for u in (HOLDER, unit("a1"), unit("a2")):
        assert active(m, u) == "active", (u, m.log_tail())
    assert sessions(env) == ["a1", "a2"]
    first = wait_until(lambda: running(env, "a1"), what="a1 running")
    doc = status(env)
    assert doc["supervisor"] == "systemd"
    assert doc["holder"] == "running"
    assert doc["socket"] == env["MOSAIC_TMUX_SOCKET"]
    r = row(env, "a1")
    assert r["restarts"] == 0 and r["last_exit"] is None and r["session"] == "a1"
    # The pid is the runtime's, not the unit's waiter.
    assert Path(f"/proc/{r['pid']}/comm").read_text().strip() == "bash"
    assert int(m.prop(unit("a1"), "MainPID")) != r["pid"]

    again = ok(env, "start").out
    assert "a1: already running" in again
    assert row(env, "a1")["pid"] == first["pid"]

    pids = [r["pid"] for r in status(env)["agents"]]
    out = ok(env, "stop").out
    assert "holder: stopped" in out
    for u in (HOLDER, unit("a1"), unit("a2")):
        assert active(m, u) == "inactive", u
    assert sessions(env) == []
    assert all(not pid_alive(p) for p in pids)
    doc = status(env)
    assert doc["holder"] == "stopped"
    assert {r["state"] for r in doc["agents"]} == {"stopped"}


def test_stop_one_leaves_the_others(user_manager: UserManager, env: dict[str, str]) -> None:
    m = user_manager
    installed(env, shell_roster(["a1", "a2"]))
    ok(env, "start")
    a1 = wait_until(lambda: running(env, "a1"), what="a1 running")
    out = ok(env, "stop", "a1").out
    assert "a1: stopped" in out
    assert active(m, unit("a1")) == "inactive"
    # A requested stop is a clean exit, never a failure.
    assert m.prop(unit("a1"), "Result") == "success"
    assert active(m, unit("a2")) == "active"
    assert active(m, HOLDER) == "active"
    assert sessions(env) == ["a2"]
    assert not pid_alive(a1["pid"])
    assert row(env, "a1")["state"] == "stopped"
    assert row(env, "a2")["state"] == "running"
    assert "a1: not running" in ok(env, "stop", "a1").out


def test_sigkill_runtime_systemd_restarts_it(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    m = user_manager
    installed(env, shell_roster(["a1"]))
    ok(env, "start")
    first = wait_until(lambda: running(env, "a1"), what="a1 running")
    os.kill(first["pid"], signal.SIGKILL)
    second = wait_until(
        lambda: (r := running(env, "a1")) and r["pid"] != first["pid"] and r,
        timeout=20, interval=0.1, what="a1 back with a new pid",
    )  # fmt: skip
    assert int(m.prop(unit("a1"), "NRestarts")) >= 1
    assert second["restarts"] >= 1
    # tmux 3.3a now and then leaves the killed runtime unreaped, and then has no status.
    assert second["last_exit"] in (-signal.SIGKILL, None)
    assert sessions(env) == ["a1"]


def test_crash_loop_ends_failed_and_restart_resets_it(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    m = user_manager
    body = shell_roster(["good"])
    body = body.replace("agents:\n", "agents:\n  - name: crashy\n    runtime: crash\n", 1)
    body += f"runtimes:\n  crash:\n    command: {json.dumps(CRASH)}\n    processes: [python3]\n"
    installed(env, body)
    ok(env, "start")
    wait_until(lambda: active(m, unit("crashy")) == "failed", timeout=30, interval=0.2,
               what="crashy failed")  # fmt: skip
    restarts = int(m.prop(unit("crashy"), "NRestarts"))
    assert 1 <= restarts <= 5  # bounded by StartLimitBurst
    r = row(env, "crashy")
    assert r["state"] == "failed" and r["pid"] is None and r["last_exit"] == 3
    assert row(env, "good")["state"] == "running"  # the others are not disturbed

    # A restart resets the start limit: the unit runs (and crashes) again.
    ok(env, "restart", "crashy")
    wait_until(lambda: int(m.prop(unit("crashy"), "NRestarts") or 0) >= 1
               or active(m, unit("crashy")) in ("activating", "active"),
               timeout=10, what="crashy started again")  # fmt: skip
    wait_until(lambda: active(m, unit("crashy")) == "failed", timeout=30, interval=0.2,
               what="crashy failed again")  # fmt: skip


def test_each_exit_reaches_systemd_with_its_code_and_each_policy_is_obeyed(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    """The unit's waiter exits with the runtime's own status (`unitexec exited`), so
    systemd's Restart= acts on it as the roster's `restart:` says."""
    m = user_manager

    def runtime(code: int, after: float) -> str:
        argv = ["python3", "-c", f"import time; time.sleep({after}); raise SystemExit({code})"]
        return f"    command: {json.dumps(argv)}\n    processes: [python3]\n"

    body = (
        "version: 1\nagents:\n"
        "  - name: fails\n    runtime: four\n"  # on-failure (the default), exits 4
        "  - name: clean\n    runtime: zero\n"  # on-failure, exits 0
        "  - name: never\n    runtime: three\n    restart: never\n"
        "  - name: always\n    runtime: slowzero\n    restart: always\n"
        "runtimes:\n"
        f"  four:\n{runtime(4, 0.3)}  zero:\n{runtime(0, 0.3)}"
        f"  three:\n{runtime(3, 0.3)}  slowzero:\n{runtime(0, 1.5)}"
    )
    installed(env, body)
    ok(env, "start")
    wait_until(lambda: int(m.prop(unit("fails"), "NRestarts") or 0) >= 1, timeout=20,
               what="fails restarted")  # fmt: skip
    # The marker: `always` exits 1.5 s in and comes back after RestartSec=1s, so by then
    # clean and never (both gone 0.3 s in) would have been restarted too, had they been.
    wait_until(lambda: int(m.prop(unit("always"), "NRestarts") or 0) >= 1, timeout=20,
               what="always restarted after a clean exit")  # fmt: skip
    # Between its runs (waiting out RestartSec) the unit shows its last run's status.
    wait_until(lambda: m.prop(unit("fails"), "ExecMainStatus") == "4", timeout=20,
               what="fails' exit status 4 seen by systemd")  # fmt: skip
    for name, code, state in (("clean", "0", "inactive"), ("never", "3", "failed")):
        assert m.prop(unit(name), "NRestarts") == "0", name
        assert m.prop(unit(name), "ExecMainStatus") == code, name
        assert active(m, unit(name)) == state, name
    assert m.prop(unit("clean"), "Result") == "success"
    rows = {r["name"]: r for r in status(env)["agents"]}
    assert rows["clean"]["state"] == "stopped" and rows["clean"]["last_exit"] == 0
    # Not `failed`: that means gave up after repeated crashes; this one was told not to try.
    assert rows["never"]["state"] == "stopped" and rows["never"]["last_exit"] == 3
    assert rows["fails"]["last_exit"] == 4
    ok(env, "stop")


def test_restart_gives_a_new_pid(user_manager: UserManager, env: dict[str, str]) -> None:
    m = user_manager
    installed(env, shell_roster(["a1", "a2"]))
    ok(env, "start")
    a1 = wait_until(lambda: running(env, "a1"), what="a1 running")
    a2 = wait_until(lambda: running(env, "a2"), what="a2 running")
    ok(env, "restart", "a1")
    new = wait_until(lambda: running(env, "a1"), what="a1 running again")
    assert new["pid"] != a1["pid"] and not pid_alive(a1["pid"])
    assert row(env, "a2")["pid"] == a2["pid"]

    ok(env, "stop", "a2")
    ok(env, "restart")  # the whole fleet, starting a stopped agent too
    wait_until(lambda: running(env, "a1") and running(env, "a2"), what="a1, a2 running")
    assert active(m, unit("a1")) == active(m, unit("a2")) == "active"
    assert not pid_alive(new["pid"])


def test_a_long_restart_that_keeps_going_is_not_overridden(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    """One `systemctl stop` covers all four units; while it runs, each unit that goes down
    counts as progress, so a waiting restart does not take the long call for a hung one.
    (Each unit's ExecStop is a Python start-up: on a loaded machine the first unit is down
    a few seconds in, so the max wait here is longer than under tmux, and the stops are
    spread over 6 s so that the whole restart clearly outlasts it: 2.8 s did not on CI.)"""
    names = ["s1", "s2", "s3", "s4"]
    installed(env, slow_stopping_roster([1.5, 3.0, 4.5, 6.0]))
    ok(env, "start")
    wait_until(lambda: all(running(env, n) for n in names), what="all running")
    restart_outlasting_max_wait(env, names, max_wait=4.0)
    wait_until(lambda: all(running(env, n) for n in names), what="all running again")
    for name in names:
        assert active(user_manager, unit(name)) == "active"


def test_stop_and_start_report_progress_as_units_go_down_and_come_up(
    user_manager: UserManager, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Called in-process, so each report can be timed: the four stops end about 0.7 s
    apart inside ONE systemctl call, and progress is reported as each unit goes down, not
    once at the end of the call."""
    from mosaic.config.paths import resolve
    from mosaic.fleet import open_fleet
    from mosaic.supervise.systemd import supervisor

    names = ["s1", "s2", "s3", "s4"]
    installed(env, slow_stopping_roster([0.7, 1.4, 2.1, 2.8]))
    ok(env, "start")
    wait_until(lambda: all(running(env, n) for n in names), what="all running")
    for key in ("DBUS_SESSION_BUS_ADDRESS", "TMUX"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # systemctl and tmux read the process environment
    fleet = open_fleet(resolve(env=env), env)
    seen: list[float] = []
    supervisor.stop(fleet, list(fleet.roster.agents), False, lambda: seen.append(time.monotonic()))
    # Two or more units seen going down while the call ran, plus the report after it.
    assert len(seen) >= 3, seen
    assert seen[-1] - seen[0] > 1.0, seen
    seen.clear()
    supervisor.start(fleet, list(fleet.roster.agents), lambda: seen.append(time.monotonic()))
    assert len(seen) >= 1
    assert all(running(env, n) for n in names)


def test_start_needs_installed_units(env: dict[str, str]) -> None:
    write_roster(env, shell_roster(["a1"]))
    res = mosaic(env, "start")
    assert res.code == 1
    assert "mosaic fleet install" in res.err and "Traceback" not in res.err


def test_uninstall_leaves_nothing(user_manager: UserManager, env: dict[str, str]) -> None:
    m = user_manager
    installed(env, shell_roster(["a1"]))
    ok(env, "start")
    pid = wait_until(lambda: running(env, "a1"), what="a1 running")["pid"]
    ok(env, "uninstall")
    assert not pid_alive(pid)
    assert sessions(env) == []
    assert list(m.unit_dir.glob("mosaic-*")) == []
    listed = m.systemctl("list-units", "--all", "--plain", "--no-legend", "mosaic-*").stdout
    assert listed.strip() == ""


def test_removed_agent_unit_still_stops(user_manager: UserManager, env: dict[str, str]) -> None:
    m = user_manager
    installed(env, shell_roster(["a1", "a2"]))
    ok(env, "start")
    a2 = wait_until(lambda: running(env, "a2"), what="a2 running")
    write_roster(env, shell_roster(["a1"]))  # a2 leaves the roster while it runs
    ok(env, "stop")
    assert active(m, unit("a2")) == "inactive"
    assert not pid_alive(a2["pid"])
    assert sessions(env) == []


def test_a_removed_agent_unit_fails_once_instead_of_retrying(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    m = user_manager
    installed(env, shell_roster(["a1", "gone"]))
    write_roster(env, shell_roster(["a1"]))  # "gone" leaves the roster, its unit stays
    m.systemctl("start", "--no-block", unit("gone"), check=False)
    wait_until(lambda: active(m, unit("gone")) == "failed", timeout=20, interval=0.1,
               what="the unit of an agent not in the roster failed")  # fmt: skip
    assert m.prop(unit("gone"), "ExecMainStatus") == "78"
    assert m.prop(unit("gone"), "NRestarts") == "0"
    ok(env, "stop")


def _new_server(m: UserManager, old: int) -> int | None:
    pid = int(m.prop(HOLDER, "MainPID") or 0)
    return pid if pid not in (0, old) and active(m, HOLDER) == "active" else None


def test_a_lost_tmux_server_comes_back_with_the_agents_that_ran(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    m = user_manager
    installed(env, shell_roster(["a1", "a2", "off"]))
    ok(env, "start")
    wait_until(lambda: all(running(env, n) for n in ("a1", "a2", "off")), what="all running")
    pids = {r["name"]: r["pid"] for r in status(env)["agents"]}
    ok(env, "stop", "off")  # the operator's stop: it must outlive the server's loss

    def lose_server(how: str) -> None:
        server = int(m.prop(HOLDER, "MainPID"))
        if how == "sigkill":
            os.kill(server, signal.SIGKILL)
        else:
            tmux(env, "kill-server")  # exits 0: Restart=always still brings it back
        wait_until(lambda: _new_server(m, server), timeout=20, interval=0.1,
                   what=f"a new tmux server after {how}")  # fmt: skip

        def revived() -> bool:
            rows = [running(env, n) for n in ("a1", "a2")]
            return all(r and r["pid"] != pids[r["name"]] for r in rows)

        wait_until(revived, timeout=30, interval=0.1, what=f"a1, a2 revived after {how}")
        for name in ("a1", "a2"):
            assert not pid_alive(pids[name])
            pids[name] = row(env, name)["pid"]
            assert active(m, unit(name)) == "active"
        assert sessions(env) == ["a1", "a2"]
        assert active(m, unit("off")) == "inactive"
        assert row(env, "off")["state"] == "stopped"

    lose_server("sigkill")
    lose_server("kill-server")
    ok(env, "stop")
    assert active(m, HOLDER) == "inactive"  # an explicit stop is not undone


def test_auto_picks_systemd_with_a_manager(
    user_manager: UserManager, fleet_env: dict[str, str]
) -> None:
    env = user_manager.env_for(fleet_env)
    env["MOSAIC_FLEET_SUPERVISOR"] = "auto"
    write_roster(env, shell_roster(["a1"]))
    assert status(env)["supervisor"] == "systemd"


def test_auto_picks_tmux_without_a_manager(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(fleet_env)
    env["MOSAIC_FLEET_SUPERVISOR"] = "auto"
    runtime = tmp_path / "no-manager"
    runtime.mkdir(mode=0o700)
    env["XDG_RUNTIME_DIR"] = str(runtime)  # no user manager listens here
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    write_roster(env, shell_roster(["a1"]))
    assert status(env)["supervisor"] == "tmux"


def test_send_capture_and_logs_work_the_same(
    user_manager: UserManager, env: dict[str, str], tmp_path: Path
) -> None:
    installed(env, shell_roster(["a1"]))
    ok(env, "start")
    wait_until(lambda: running(env, "a1"))
    out = tmp_path / "sent.txt"
    res = ok(env, "send", "--json", "a1", f"echo 'via systemd' > {out}")
    result = json.loads(res.out)["results"][0]
    assert result["outcome"] == "accepted" and result["accepted"] is True
    assert wait_until(lambda: out.exists() and out.read_text()) == "via systemd\n"
    assert "via systemd" in ok(env, "capture", "a1").out
    wait_until(lambda: "via systemd" in ok(env, "logs", "a1").out, what="transcript")
    ok(env, "stop")


def test_start_notes_an_agent_added_since_install(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    installed(env, shell_roster(["a1"]))
    assert "note:" not in ok(env, "start").out
    ok(env, "add", "a2", "--runtime", "shell")
    out = mosaic(env, "start", "a1").out
    assert "installed units lag the roster for a2" in out and "mosaic fleet install" in out
    ok(env, "install")
    assert "note:" not in ok(env, "start", "a1").out
    ok(env, "stop")
