"""Which supervisor runs a fleet: decided once, recorded, then obeyed (supervise/choice.py).

The rules against a real fleet database and real processes; the systemd cases against a
real private user manager (systemd_harness), reached or not through the environment as
cron would be.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fleetkit import mosaic, ok, sessions, shell_roster, status, tmux, write_roster
from helpers import wait_until
from mosaic.config.load import load
from mosaic.config.paths import Paths
from mosaic.config.roster import Roster, Supervisor
from mosaic.errors import ConfigError
from mosaic.supervise import choice
from mosaic.supervise.systemd import units
from systemd_harness import UserManager, user_manager
from watchkit import watcher_running

__all__ = ["user_manager"]  # the fixture, imported for pytest


def paths_of(env: dict[str, str]) -> Paths:
    home = Path(env["MOSAIC_HOME"])
    return Paths(home, home / "fleet" / "roster.yaml")


def roster_with(env: dict[str, str], supervisor: str) -> Roster:
    write_roster(env, shell_roster(["a1"], f"supervisor: {supervisor}\n"))
    return load(paths_of(env).roster)


def no_manager(env: dict[str, str]) -> dict[str, str]:
    """What cron gives a job: no XDG_RUNTIME_DIR, no session bus."""
    return {k: v for k, v in env.items()
            if k not in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")}  # fmt: skip


@pytest.fixture
def env(fleet_env: dict[str, str]) -> dict[str, str]:
    e = no_manager(fleet_env)
    del e["MOSAIC_FLEET_SUPERVISOR"]  # the roster says it in these tests
    return e


# --- the rules --------------------------------------------------------------------------


def test_auto_uses_the_record_even_where_no_manager_answers(env: dict[str, str]) -> None:
    paths = paths_of(env)
    roster = roster_with(env, "auto")
    choice.record(paths, Supervisor.SYSTEMD, "test")
    for deciding in (False, True):
        assert choice.resolve(paths, roster, env, deciding=deciding) is Supervisor.SYSTEMD
    rec = choice.recorded(paths)
    assert rec is not None and rec.supervisor is Supervisor.SYSTEMD and rec.why == "test"


def test_auto_uses_a_tmux_record_even_where_a_manager_answers(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    reachable = user_manager.env_for(env)
    paths = paths_of(reachable)
    roster = roster_with(reachable, "auto")
    assert choice.manager_problem(reachable) is None
    choice.record(paths, Supervisor.TMUX, "test")
    assert choice.resolve(paths, roster, reachable, deciding=True) is Supervisor.TMUX


def test_a_start_decides_and_records_other_commands_do_not(env: dict[str, str]) -> None:
    paths = paths_of(env)
    roster = roster_with(env, "auto")
    assert choice.resolve(paths, roster, env, deciding=False) is Supervisor.TMUX
    assert choice.recorded(paths) is None  # nothing runs: a look decides nothing
    assert choice.resolve(paths, roster, env, deciding=True) is Supervisor.TMUX
    rec = choice.recorded(paths)
    assert rec is not None and rec.supervisor is Supervisor.TMUX
    assert rec.why == "auto: no user manager answered"


def test_an_explicit_setting_wins_and_a_start_records_it(env: dict[str, str]) -> None:
    paths = paths_of(env)
    choice.record(paths, Supervisor.TMUX, "test")
    roster = roster_with(env, "systemd")
    # Nothing runs, so switching is fine; only a start records the switch.
    assert choice.resolve(paths, roster, env, deciding=False) is Supervisor.SYSTEMD
    assert choice.recorded(paths).supervisor is Supervisor.TMUX  # type: ignore[union-attr]
    assert choice.resolve(paths, roster, env, deciding=True) is Supervisor.SYSTEMD
    assert choice.recorded(paths).supervisor is Supervisor.SYSTEMD  # type: ignore[union-attr]


def test_an_explicit_setting_against_the_record_of_a_running_fleet_is_refused(
    env: dict[str, str],
) -> None:
    env = dict(env, MOSAIC_FLEET_SUPERVISOR="tmux")
    write_roster(env, shell_roster(["a1"]))
    ok(env, "start")
    pids = [r["pid"] for r in status(env)["agents"]]
    for args in (["start"], ["status"], ["stop"]):
        res = mosaic(dict(env, MOSAIC_FLEET_SUPERVISOR="systemd"), *args)
        assert res.code == 2, (args, res)
        assert res.err.strip().splitlines() == [
            "the fleet runs under the tmux supervisor, but this command asks for systemd "
            "(roster `supervisor:` or $MOSAIC_FLEET_SUPERVISOR); stop the whole fleet "
            "first, then start it to switch"
        ]
    assert [r["pid"] for r in status(env)["agents"]] == pids  # nothing was touched
    ok(env, "stop")


def test_without_a_record_a_running_tmux_server_tells(env: dict[str, str]) -> None:
    """A fleet started by a mosaic that kept no record: its server is not in the holder
    unit's cgroup, so the tmux supervisor runs it; that is recorded."""
    paths = paths_of(env)
    roster = roster_with(env, "auto")
    socket = env["MOSAIC_TMUX_SOCKET"]
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "a1", "sleep", "300"],
                   env=env, check=True, timeout=15)  # fmt: skip
    server = int(tmux(env, "display-message", "-p", "#{pid}"))
    got = choice.resolve(paths, roster, env, deciding=False, server_pid=lambda: server)
    assert got is Supervisor.TMUX
    rec = choice.recorded(paths)
    assert rec is not None and rec.supervisor is Supervisor.TMUX
    assert rec.why == "found the fleet's tmux server running under tmux"


def test_observed_reads_the_holder_unit_from_a_cgroup(tmp_path: Path) -> None:
    assert choice.observed(None) is None
    assert choice.observed(os.getpid()) is Supervisor.TMUX  # pytest runs in no holder unit
    child = subprocess.Popen(["sleep", "300"])
    child.kill()
    child.wait()
    assert choice.observed(child.pid) is None  # gone: nothing to tell


# --- against a real user manager ----------------------------------------------------------

# A runtime that notes each of its starts, so a second starter would show.
STARTS = (
    "import os, sys, time\n"
    "open(sys.argv[1], 'a').write(f'{os.getpid()}\\n')\n"
    "time.sleep(1e6)\n"
)


def systemd_fleet(m: UserManager, fleet_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A started systemd fleet (roster `supervisor: auto`): a1 logs its starts, a2 a shell."""
    env = m.env_for(fleet_env)
    del env["MOSAIC_FLEET_SUPERVISOR"]
    log = tmp_path / "a1.starts"
    write_roster(env, (
        "version: 1\nsupervisor: auto\nagents:\n"
        f"  - name: a1\n    runtime: noting\n    args: [{json.dumps(str(log))}]\n"
        "  - name: a2\n    runtime: shell\n"
        f"runtimes:\n  noting:\n    command: {json.dumps(['python3', '-c', STARTS])}\n"
        "    processes: [python3]\n"
    ))  # fmt: skip
    ok(env, "install")
    ok(env, "start")
    # The watcher may still be coming up when `start` returns: wait for it too, so that
    # what the tests compare later is the whole fleet.
    wait_until(lambda: all(panes(env).get(n, ("", 0, False))[2] for n in ("a1", "a2")),
               what="a1 and a2 running")  # fmt: skip
    wait_until(lambda: watcher_running(env), what="the watcher running")
    return env


def panes(env: dict[str, str]) -> dict[str, tuple[str, int, bool]]:
    """session -> (pane id, pane pid, runtime alive), straight from tmux."""
    out = tmux(env, "list-panes", "-a", "-F", "#{session_name} #{pane_id} #{pane_pid} #{pane_dead}")
    rows = [line.split() for line in out.splitlines()]
    return {r[0]: (r[1], int(r[2]), r[3] == "0") for r in rows}


def starts(tmp_path: Path) -> list[str]:
    return (tmp_path / "a1.starts").read_text().split()


def crash_a1_and_see_only_systemd_restart_it(
    m: UserManager, env: dict[str, str], tmp_path: Path
) -> None:
    """A hook respawn would come half a second after the death, well before systemd's
    (RestartSec=1s), and the unit would then adopt that pane: so a NEW pane, made by the
    unit, and exactly one new start prove that no tmux respawn was armed."""
    pane_id, pid, _ = panes(env)["a1"]
    assert starts(tmp_path) == [str(pid)]
    restarts = int(m.prop(units.agent_unit("a1"), "NRestarts"))
    os.kill(pid, signal.SIGKILL)

    def back() -> tuple[str, int, bool] | None:
        row = panes(env).get("a1")
        return row if row is not None and row[2] and row[1] != pid else None

    new_id, new_pid, _ = wait_until(back, timeout=20, what="a1 back with a new pid")
    wait_until(lambda: m.prop(units.agent_unit("a1"), "ActiveState") == "active",
               what="a1's unit active")  # fmt: skip
    assert new_id != pane_id, "the pane was respawned in place: a tmux respawn was armed"
    assert int(m.prop(units.agent_unit("a1"), "NRestarts")) == restarts + 1
    wait_until(lambda: len(starts(tmp_path)) >= 2, what="the new runtime noted its start")
    assert starts(tmp_path) == [str(pid), str(new_pid)]


def test_a_systemd_fleet_is_never_run_through_tmux_when_the_manager_is_unreachable(
    user_manager: UserManager, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    m = user_manager
    env = systemd_fleet(m, fleet_env, tmp_path)
    before = panes(env)
    server = int(tmux(env, "display-message", "-p", "#{pid}"))
    assert choice.observed(server) is Supervisor.SYSTEMD  # the holder unit runs it
    cron = no_manager(env)
    for args in (["status"], ["status", "--json"], ["stop"], ["stop", "a1"], ["start"],
                 ["start", "a2"], ["restart", "a1"], ["restart"]):  # fmt: skip
        res = mosaic(cron, *args)
        assert res.code == 1, (args, res)
        assert res.out == ""
        assert res.err.strip().splitlines() == [
            "this fleet runs under the systemd supervisor, but the systemd user manager "
            "cannot be reached: XDG_RUNTIME_DIR is not set (cron jobs and non-login shells "
            f"lack it; set XDG_RUNTIME_DIR=/run/user/{os.getuid()})"
        ], args
    # Nothing was started, stopped or respawned under tmux, and no second server came up.
    assert panes(env) == before
    assert int(tmux(env, "display-message", "-p", "#{pid}")) == server
    assert sorted(os.listdir(Path(env["TMUX_TMPDIR"]) / f"tmux-{os.getuid()}")) == [
        env["MOSAIC_TMUX_SOCKET"]
    ]
    rec = choice.recorded(paths_of(env))
    assert rec is not None and rec.supervisor is Supervisor.SYSTEMD
    crash_a1_and_see_only_systemd_restart_it(m, env, tmp_path)
    ok(env, "stop")


def test_without_a_record_a_running_systemd_fleet_is_still_recognised(
    user_manager: UserManager, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """As after an upgrade from a mosaic that kept no record: the tmux server's cgroup says
    systemd, for a command from cron and for the pane-died hook alike."""
    m = user_manager
    env = systemd_fleet(m, fleet_env, tmp_path)
    paths = paths_of(env)
    choice.forget(paths)
    res = mosaic(no_manager(env), "stop")
    assert res.code == 1 and "systemd user manager cannot be reached" in res.err, res
    rec = choice.recorded(paths)
    assert rec is not None and rec.supervisor is Supervisor.SYSTEMD
    assert rec.why == "found the fleet's tmux server running under systemd"
    assert sessions(env) == ["a1", "a2"]
    choice.forget(paths)
    crash_a1_and_see_only_systemd_restart_it(m, env, tmp_path)  # the hook asks the cgroup
    ok(env, "stop")


def test_install_records_systemd_and_uninstall_forgets_it(
    user_manager: UserManager, fleet_env: dict[str, str]
) -> None:
    env: dict[str, Any] = user_manager.env_for(fleet_env)
    paths = paths_of(env)
    write_roster(env, shell_roster(["a1"]))
    ok(env, "install")
    rec = choice.recorded(paths)
    assert rec is not None and rec.supervisor is Supervisor.SYSTEMD
    ok(env, "uninstall")
    assert choice.recorded(paths) is None
    # A tmux record is none of uninstall's business.
    choice.record(paths, Supervisor.TMUX, "test")
    ok(env, "uninstall")
    rec = choice.recorded(paths)
    assert rec is not None and rec.supervisor is Supervisor.TMUX


def test_a_bad_supervisor_setting_is_a_config_error(env: dict[str, str]) -> None:
    roster = roster_with(env, "auto")
    with pytest.raises(ConfigError, match="MOSAIC_FLEET_SUPERVISOR"):
        choice.resolve(paths_of(env), roster, dict(env, MOSAIC_FLEET_SUPERVISOR="cron"),
                       deciding=True)  # fmt: skip
