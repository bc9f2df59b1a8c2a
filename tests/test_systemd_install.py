"""`install` / `uninstall` against a real, private systemd user manager (systemd_harness).

These run the CLI as a user would (`python -m mosaic fleet ...`) with the test's private
mosaic home, tmux socket and user manager, and ask systemd itself what it now knows.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import pid_alive, run_mosaic, wait_until
from mosaic.errors import OperationFailed
from mosaic.supervise.systemd import systemctl, units
from systemd_harness import UserManager, user_manager

__all__ = ["user_manager"]  # the fixture, imported for pytest

HOLDER = units.HOLDER_UNIT


def write_roster(env: dict[str, str], agents: dict[str, str]) -> Path:
    """A roster with `agents` (name -> restart policy), all on the shell runtime."""
    roster = Path(env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"
    roster.parent.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "agents:"]
    for name, restart in agents.items():
        lines += [f"  - name: {name}", "    runtime: shell", f"    restart: {restart}"]
    roster.write_text("\n".join(lines) + "\n")
    return roster


def snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` with its content or link target: to prove nothing changed."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                out[rel] = path.read_text()
            else:
                out[rel] = "<dir>"
    return out


def enabled_state(m: UserManager, unit: str) -> str:
    return m.systemctl("is-enabled", unit, check=False).stdout.strip()


def test_install_writes_and_enables(
    user_manager: UserManager, fleet_env: dict[str, str]
) -> None:
    m = user_manager
    env = m.env_for(fleet_env)
    write_roster(env, {"alpha": "on-failure", "beta": "always", "gamma": "never"})
    res = run_mosaic(["fleet", "install"], env)
    assert res.code == 0, res.err
    assert "Traceback" not in res.err

    for name in (HOLDER, units.AGENT_TEMPLATE):
        path = m.unit_dir / name
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for unit in (HOLDER, "mosaic-agent@alpha.service", "mosaic-agent@beta.service"):
        assert enabled_state(m, unit) == "enabled", unit
    # The manager really applies the per-agent drop-ins.
    assert m.prop("mosaic-agent@alpha.service", "Restart") == "on-failure"
    assert m.prop("mosaic-agent@beta.service", "Restart") == "always"
    assert m.prop("mosaic-agent@gamma.service", "Restart") == "no"
    assert m.prop("mosaic-agent@alpha.service", "BindsTo") == HOLDER
    assert m.prop("mosaic-agent@alpha.service", "StartLimitBurst") == "5"
    exec_start = m.prop("mosaic-agent@alpha.service", "ExecStart")
    assert f"path={sys.executable} " in exec_start
    assert "mosaic.unitexec run alpha" in exec_start
    environment = m.prop(HOLDER, "Environment")
    assert f"MOSAIC_HOME={fleet_env['MOSAIC_HOME']}" in environment
    assert f"MOSAIC_TMUX_SOCKET={fleet_env['MOSAIC_TMUX_SOCKET']}" in environment
    assert f"TMUX_TMPDIR={fleet_env['TMUX_TMPDIR']}" in environment
    # Lingering cannot be on for this test user's private manager: it is reported, not fatal.
    assert "linger" in res.err


def test_reinstall_follows_roster_changes(
    user_manager: UserManager, fleet_env: dict[str, str]
) -> None:
    m = user_manager
    env = m.env_for(fleet_env)
    write_roster(env, {"alpha": "on-failure", "beta": "on-failure"})
    assert run_mosaic(["fleet", "install"], env).code == 0

    write_roster(env, {"beta": "always", "gamma": "on-failure"})
    res = run_mosaic(["fleet", "install"], env)
    assert res.code == 0, res.err
    assert enabled_state(m, "mosaic-agent@alpha.service") == "disabled"
    assert not (m.unit_dir / "mosaic-agent@alpha.service.d").exists()
    assert enabled_state(m, "mosaic-agent@beta.service") == "enabled"
    assert enabled_state(m, "mosaic-agent@gamma.service") == "enabled"
    assert m.prop("mosaic-agent@beta.service", "Restart") == "always"
    assert f"wrote {m.unit_dir / HOLDER}" not in res.out  # unchanged files are left alone

    # Installing the same roster again changes nothing on disk.
    before = snapshot(m.unit_dir)
    assert run_mosaic(["fleet", "install"], env).code == 0
    assert snapshot(m.unit_dir) == before


def test_install_no_enable(user_manager: UserManager, fleet_env: dict[str, str]) -> None:
    m = user_manager
    env = m.env_for(fleet_env)
    write_roster(env, {"alpha": "on-failure"})
    res = run_mosaic(["fleet", "install", "--no-enable"], env)
    assert res.code == 0, res.err
    assert (m.unit_dir / HOLDER).is_file()
    assert enabled_state(m, HOLDER) == "disabled"
    assert enabled_state(m, "mosaic-agent@alpha.service") == "disabled"


def test_dry_runs_change_nothing(user_manager: UserManager, fleet_env: dict[str, str]) -> None:
    m = user_manager
    env = m.env_for(fleet_env)
    write_roster(env, {"alpha": "on-failure"})

    res = run_mosaic(["fleet", "install", "--dry-run"], env)
    assert res.code == 0, res.err
    assert "dry run" in res.out and f"write {m.unit_dir / HOLDER}" in res.out
    assert "enable mosaic-agent@alpha.service" in res.out
    assert snapshot(m.unit_dir) == {}

    assert run_mosaic(["fleet", "install"], env).code == 0
    write_roster(env, {"beta": "on-failure"})
    before = snapshot(m.unit_dir)
    res = run_mosaic(["fleet", "install", "--dry-run"], env)
    assert res.code == 0, res.err
    assert "disable mosaic-agent@alpha.service" in res.out
    assert "enable mosaic-agent@beta.service" in res.out
    assert snapshot(m.unit_dir) == before

    res = run_mosaic(["fleet", "uninstall", "--dry-run"], env)
    assert res.code == 0, res.err
    assert f"remove {m.unit_dir / HOLDER}" in res.out
    assert snapshot(m.unit_dir) == before
    assert enabled_state(m, HOLDER) == "enabled"


def _write_tmux_conf(env: dict[str, str]) -> None:
    """The supervisor core writes this before the holder starts; stand in for it here."""
    conf = Path(env["MOSAIC_HOME"]) / "fleet" / "run" / "tmux.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("set -s exit-empty off\n")


def _tmux_answers(env: dict[str, str]) -> bool:
    proc = subprocess.run(
        ["tmux", "-L", env["MOSAIC_TMUX_SOCKET"], "list-sessions"],
        env=env,
        capture_output=True,
        timeout=10,
        check=False,
    )
    return proc.returncode == 0


def test_holder_runs_the_tmux_server(
    user_manager: UserManager, fleet_env: dict[str, str]
) -> None:
    m = user_manager
    env = m.env_for(fleet_env)
    write_roster(env, {"alpha": "on-failure"})
    _write_tmux_conf(env)
    assert run_mosaic(["fleet", "install"], env).code == 0

    # `start` returns only after ExecStartPost saw the server answer on its socket.
    m.systemctl("start", HOLDER)
    assert m.prop(HOLDER, "ActiveState") == "active"
    assert _tmux_answers(env)
    pid = int(m.prop(HOLDER, "MainPID"))
    assert Path(f"/proc/{pid}/comm").read_text().strip().startswith("tmux")

    # systemd, not mosaic, brings a killed server back (Restart=on-failure).
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: m.prop(HOLDER, "NRestarts") == "1" and m.prop(HOLDER, "ActiveState") == "active",
        timeout=20,
        what="the holder restarted by systemd",
    )
    wait_until(lambda: _tmux_answers(env), timeout=10, what="tmux server back on its socket")
    new_pid = int(m.prop(HOLDER, "MainPID"))
    assert new_pid != pid

    m.systemctl("stop", HOLDER)
    assert m.prop(HOLDER, "ActiveState") == "inactive"
    wait_until(lambda: not pid_alive(new_pid), timeout=10, what="the server gone")
    assert not _tmux_answers(env)


def test_uninstall_leaves_nothing(user_manager: UserManager, fleet_env: dict[str, str]) -> None:
    m = user_manager
    env = m.env_for(fleet_env)
    write_roster(env, {"alpha": "on-failure", "beta": "never"})
    _write_tmux_conf(env)
    assert run_mosaic(["fleet", "install"], env).code == 0
    m.systemctl("start", HOLDER)
    # A user's own drop-in beside ours survives; only what install wrote goes.
    user_dropin = m.unit_dir / "mosaic-agent@beta.service.d" / "50-mine.conf"
    user_dropin.write_text("[Service]\nNice=5\n")

    # Uninstall does not need a valid roster.
    Path(env["MOSAIC_HOME"], "fleet", "roster.yaml").write_text("version: [broken\n")
    res = run_mosaic(["fleet", "uninstall"], env)
    assert res.code == 0, res.err
    assert f"stopped {HOLDER}" in res.out

    left = snapshot(m.unit_dir)
    assert left == {
        "mosaic-agent@beta.service.d": "<dir>",
        "mosaic-agent@beta.service.d/50-mine.conf": "[Service]\nNice=5\n",
    }
    for unit in (HOLDER, "mosaic-agent@alpha.service", "mosaic-agent@beta.service"):
        assert m.prop(unit, "ActiveState") == "inactive"
    assert enabled_state(m, HOLDER) != "enabled"
    listed = m.systemctl(
        "list-units", "--all", "--plain", "--no-legend", "mosaic-*"
    ).stdout.strip()
    assert listed == ""
    assert not _tmux_answers(env)

    # A second uninstall has nothing to do and says so.
    user_dropin.unlink()
    res = run_mosaic(["fleet", "uninstall"], env)
    assert res.code == 0, res.err
    assert "nothing was installed" in res.out
    assert snapshot(m.unit_dir) == {}


def test_awkward_paths_reach_systemd_intact(
    user_manager: UserManager, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """Quoting and `%`/`$` escaping, as systemd itself parses them."""
    m = user_manager
    home = tmp_path / "my home 100% $HOME"
    env = m.env_for(fleet_env)
    env["MOSAIC_HOME"] = str(home)
    write_roster(env, {"alpha": "on-failure"})
    _write_tmux_conf(env)
    assert run_mosaic(["fleet", "install", "--no-enable"], env).code == 0
    # systemd collapses `$$` only when it executes, so look at the real process.
    m.systemctl("start", HOLDER)
    pid = int(m.prop(HOLDER, "MainPID"))
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    assert [a.decode() for a in argv[1:]] == [
        "-L",
        env["MOSAIC_TMUX_SOCKET"],
        "-f",
        f"{home}/fleet/run/tmux.conf",
        "-D",
    ]
    process_env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"MOSAIC_HOME={home}".encode() in process_env
    m.systemctl("stop", HOLDER)


def test_install_without_user_manager_is_a_clear_error(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """No manager behind XDG_RUNTIME_DIR: exit 1, a message, nothing written."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = dict(fleet_env)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env.update(XDG_RUNTIME_DIR=str(runtime), XDG_CONFIG_HOME=str(tmp_path / "config"))
    write_roster(env, {"alpha": "on-failure"})
    for args in (["fleet", "install"], ["fleet", "uninstall"]):
        res = run_mosaic(args, env)
        assert res.code == 1, res
        assert "user manager is not reachable" in res.err
        assert "tmux supervisor works without it" in res.err
        assert "Traceback" not in res.err
    assert not (tmp_path / "config").exists()
    # A dry run still shows the plan.
    res = run_mosaic(["fleet", "install", "--dry-run"], env)
    assert res.code == 0, res.err
    assert "enable mosaic-agent@alpha.service" in res.out
    assert not (tmp_path / "config").exists()


# --- supervise.systemd.systemctl against the real manager ----------------------------------------


def test_systemctl_wrapper(user_manager: UserManager, tmp_path: Path) -> None:
    m = user_manager
    m.unit_dir.mkdir(parents=True)
    (m.unit_dir / "ok.service").write_text("[Service]\nExecStart=/bin/sleep 600\n")
    (m.unit_dir / "bad.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/false\n")
    systemctl.daemon_reload(env=m.env)
    assert systemctl.user_manager_available(m.env)

    systemctl.start(["ok.service"], env=m.env)
    with pytest.raises(OperationFailed, match="systemctl --user start failed"):
        systemctl.start(["bad.service"], env=m.env)

    # One call answers for every unit, including one systemd has never heard of.
    props = systemctl.show(
        ["ok.service", "bad.service", "nope.service"],
        ["ActiveState", "MainPID", "LoadState"],
        env=m.env,
    )
    assert props["ok.service"]["ActiveState"] == "active"
    assert int(props["ok.service"]["MainPID"]) > 0
    assert props["bad.service"]["ActiveState"] == "failed"
    assert props["nope.service"]["LoadState"] == "not-found"
    assert systemctl.is_active(["ok.service", "bad.service"], env=m.env) == {
        "ok.service": "active",
        "bad.service": "failed",
    }
    assert set(systemctl.list_units(["*.service"], env=m.env)) >= {"ok.service", "bad.service"}

    # reset-failed skips a unit the manager never loaded instead of failing the whole call.
    systemctl.reset_failed(["bad.service", "nope.service"], env=m.env)
    assert systemctl.is_active(["bad.service"], env=m.env) == {"bad.service": "inactive"}

    systemctl.stop(["ok.service", "bad.service"], env=m.env)
    assert systemctl.is_active(["ok.service"], env=m.env)["ok.service"] == "inactive"
    assert systemctl.is_enabled(["ok.service", "nope.service"], env=m.env) == {
        "ok.service": "static",
        "nope.service": "",
    }


def test_user_manager_unavailable(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DBUS_"))}
    env["XDG_RUNTIME_DIR"] = str(runtime)
    assert not systemctl.user_manager_available(env)
    with pytest.raises(OperationFailed, match="systemctl --user daemon-reload failed"):
        systemctl.daemon_reload(env=env)
