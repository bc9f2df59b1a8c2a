"""Unit rendering (golden files, quoting, systemd-analyze verify) and pure install planning.

Golden files live in tests/golden/; after an intended change to the units regenerate them
with `MOSAIC_UPDATE_GOLDEN=1 pytest tests/test_units.py` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mosaic.config.paths import Paths
from mosaic.config.roster import Agent, Host, RestartPolicy, Roster
from mosaic.errors import ConfigError
from mosaic.supervise.systemd import install, systemctl, units

GOLDEN = Path(__file__).resolve().parent / "golden"

CTX = units.UnitContext(
    python="/opt/mosaic/venv/bin/python",
    tmux="/usr/bin/tmux",
    home="/home/ada/.config/mosaic",
    roster="/home/ada/.config/mosaic/fleet/roster.yaml",
    socket="mosaic",
    path="/home/ada/.local/bin:/usr/local/bin:/usr/bin:/bin",
    tmux_tmpdir="/tmp/tmux-ada",
    lang="C.UTF-8",
)

ROSTER = Roster(
    path=Path("/home/ada/.config/mosaic/fleet/roster.yaml"),
    agents=(
        Agent("coder0", "codex"),
        Agent("reviewer", "claude", restart=RestartPolicy.ALWAYS),
        Agent("one-shot", "shell", restart=RestartPolicy.NEVER),
    ),
)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MOSAIC_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with MOSAIC_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file"


def test_holder_golden() -> None:
    check_golden("mosaic-tmux-holder.service", units.render_holder(CTX))


def test_agent_template_golden() -> None:
    check_golden("mosaic-agent@.service", units.render_agent_template(CTX))


@pytest.mark.parametrize("agent", ROSTER.agents, ids=lambda a: a.restart)
def test_dropin_golden(agent: Agent) -> None:
    check_golden(f"dropin-{agent.restart}.conf", units.render_agent_dropin(agent))


def test_minimal_context_golden() -> None:
    """Without TMUX_TMPDIR and locale the Environment= lines are simply absent."""
    bare = units.UnitContext(
        python="/usr/bin/python3",
        tmux="/usr/bin/tmux",
        home="/root/.config/mosaic",
        roster="/root/.config/mosaic/fleet/roster.yaml",
        socket="fleet.1",
        path="/usr/bin:/bin",
    )
    check_golden("mosaic-tmux-holder.minimal.service", units.render_holder(bare))


def test_render_all_lists_every_file_in_a_stable_order() -> None:
    """Holder, template, then one drop-in per agent in roster order (install's plan and its
    --dry-run listing follow this order). Byte-for-byte content is pinned by the goldens."""
    assert list(units.render_all(CTX, ROSTER, Path("/u"))) == [
        Path("/u/mosaic-tmux-holder.service"),
        Path("/u/mosaic-agent@.service"),
        Path("/u/mosaic-watcher.service"),
        Path("/u/mosaic-agent@coder0.service.d/10-mosaic.conf"),
        Path("/u/mosaic-agent@reviewer.service.d/10-mosaic.conf"),
        Path("/u/mosaic-agent@one-shot.service.d/10-mosaic.conf"),
    ]


def test_a_hosts_agents_get_no_units_here() -> None:
    """An agent on another host is supervised there (its units are that host's)."""
    roster = Roster(
        path=ROSTER.path,
        agents=(Agent("here", "shell"), Agent("there", "shell", host="gpu1")),
        hosts=(Host("gpu1", "dev@10.1.2.3"),),
    )
    assert list(units.render_all(CTX, roster, Path("/u")))[3:] == [
        Path("/u/mosaic-agent@here.service.d/10-mosaic.conf"),
    ]


def test_exec_word_quoting() -> None:
    assert units.exec_word("/usr/bin/tmux") == "/usr/bin/tmux"
    assert units.exec_word("/a b/python") == '"/a b/python"'
    assert units.exec_word("50%") == "50%%"
    assert units.exec_word("$HOME") == "$$HOME"
    assert units.exec_word('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert units.exec_word("a;b") == '"a;b"'
    assert units.exec_word("") == '""'
    with pytest.raises(ConfigError):
        units.exec_word("line\nbreak")


def test_environment_line_quoting() -> None:
    assert units.environment_line("PATH", "/a b:/c") == 'Environment="PATH=/a b:/c"'
    assert units.environment_line("X", '100% "q"') == 'Environment="X=100%% \\"q\\""'
    with pytest.raises(ConfigError):
        units.environment_line("X", "a\nb")


def test_relative_program_rejected() -> None:
    with pytest.raises(ConfigError, match="absolute"):
        units.exec_line(["python3", "-m", "x"])


def test_agent_unit_names_round_trip() -> None:
    assert units.agent_unit("my-agent_1") == "mosaic-agent@my-agent_1.service"
    assert units.agent_of_unit("mosaic-agent@my-agent_1.service") == "my-agent_1"
    assert units.agent_of_unit("mosaic-agent@.service") is None
    assert units.agent_of_unit("mosaic-tmux-holder.service") is None


def test_user_unit_dir() -> None:
    assert units.user_unit_dir({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path(
        "/x/systemd/user"
    )
    assert units.user_unit_dir({"HOME": "/h"}) == Path("/h/.config/systemd/user")
    # A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored, as systemd does.
    assert units.user_unit_dir({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.config/systemd/user"
    )


def test_context_from_environment(tmp_path: Path) -> None:
    paths = Paths(home=tmp_path / "home", roster=tmp_path / "r.yaml")
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "MOSAIC_TMUX_SOCKET": "other",
        "TMUX_TMPDIR": str(tmp_path),
        "LC_ALL": "C.UTF-8",
    }
    ctx = units.UnitContext.from_environment(paths, Roster(path=paths.roster), env)
    assert ctx.socket == "other"
    assert ctx.python == os.path.abspath(sys.executable)
    assert os.path.isabs(ctx.tmux)
    assert ctx.tmux_tmpdir == str(tmp_path)
    assert ctx.lang is None and ctx.lc_all == "C.UTF-8"
    assert ctx.tmux_conf == str(tmp_path / "home" / "fleet" / "run" / "tmux.conf")
    assert ("MOSAIC_HOME", str(tmp_path / "home")) in ctx.environment()


def test_context_without_tmux_is_clear_error(tmp_path: Path) -> None:
    paths = Paths(home=tmp_path, roster=tmp_path / "r.yaml")
    with pytest.raises(ConfigError, match="tmux not found"):
        units.UnitContext.from_environment(
            paths, Roster(path=paths.roster), {"PATH": str(tmp_path)}
        )


# --- systemd-analyze verify ----------------------------------------------------------------


def _verify(unit_dir: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze --user verify` needs a runtime dir but no running manager."""
    with tempfile.TemporaryDirectory(prefix="sv-", dir="/tmp") as scratch:
        runtime = Path(scratch) / "r"
        runtime.mkdir(mode=0o700)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DBUS_"))
        }
        env.update(XDG_RUNTIME_DIR=str(runtime), XDG_CONFIG_HOME=str(Path(scratch) / "c"))
        return subprocess.run(
            ["systemd-analyze", "--user", "verify", *(str(unit_dir / n) for n in names)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _real_context(tmp_path: Path, python: str | None = None) -> units.UnitContext:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux not installed")
    return units.UnitContext(
        python=python or sys.executable,
        tmux=tmux,
        home=str(tmp_path / "home"),
        roster=str(tmp_path / "home" / "fleet" / "roster.yaml"),
        socket="mosaic",
        path=os.environ.get("PATH", os.defpath),
        tmux_tmpdir=str(tmp_path / "tmux"),
        lang="C.UTF-8",
    )


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and os.environ.get("CI") != "true",
    reason="systemd-analyze not installed",
)


@needs_analyze
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    """Any output fails: verify exits 0 on warnings such as unknown keys."""
    unit_dir = tmp_path / "units"
    for path, text in units.render_all(_real_context(tmp_path), ROSTER, unit_dir).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    names = [
        units.HOLDER_UNIT,
        units.AGENT_TEMPLATE,
        *(units.agent_unit(a.name) for a in ROSTER.agents),  # template + its drop-in
    ]
    proc = _verify(unit_dir, names)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""


@needs_analyze
def test_verify_with_awkward_paths(tmp_path: Path) -> None:
    """Spaces, `%` and `$` in paths survive systemd's own parser."""
    odd = tmp_path / "my venv 100% $x"
    odd.mkdir()
    python = odd / "python"
    python.symlink_to(sys.executable)
    ctx = _real_context(odd, python=str(python))
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    (unit_dir / units.HOLDER_UNIT).write_text(units.render_holder(ctx))
    (unit_dir / units.AGENT_TEMPLATE).write_text(units.render_agent_template(ctx))
    proc = _verify(unit_dir, [units.HOLDER_UNIT, units.agent_unit("a")])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""


@needs_analyze
def test_verify_catches_a_bad_key(tmp_path: Path) -> None:
    """The verify tests would notice a unit systemd does not understand: they demand silence,
    and verify is not silent about an unknown key (whatever its wording)."""
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    text = units.render_holder(_real_context(tmp_path)).replace(
        "Type=simple", "Type=simple\nNoSuchKey=1"
    )
    (unit_dir / units.HOLDER_UNIT).write_text(text)
    proc = _verify(unit_dir, [units.HOLDER_UNIT])
    assert proc.returncode != 0 or proc.stderr or proc.stdout


# --- systemctl show parsing ----------------------------------------------------------------


def test_parse_show_blocks() -> None:
    text = "ActiveState=active\nId=a.service\nNRestarts=2\n\nActiveState=failed\nId=b.service\n"
    assert systemctl.parse_show(text) == [
        {"ActiveState": "active", "Id": "a.service", "NRestarts": "2"},
        {"ActiveState": "failed", "Id": "b.service"},
    ]
    assert systemctl.parse_show("") == []
    assert systemctl.parse_show("X=a=b\n") == [{"X": "a=b"}]


# --- planning (pure) -----------------------------------------------------------------------


def _installed_after(plan: install.InstallPlan) -> install.InstalledState:
    """The state a plan leaves (files written, enablement done), for planning the next run."""
    files = {w.path: w.content for w in plan.writes}
    dropins = {
        units.agent_of_unit(w.path.parent.name[: -len(".d")]) for w in plan.writes
    } - {None}
    return install.InstalledState(
        plan.unit_dir,
        files,
        frozenset(a for a in dropins if a),
        frozenset(plan.enable),
    )


def test_fresh_install_plan() -> None:
    plan = install.compute_install_plan(CTX, ROSTER, install.InstalledState(Path("/u")))
    assert {w.action for w in plan.writes} == {"create"}
    assert plan.enable == (
        units.HOLDER_UNIT,
        units.WATCHER_UNIT,
        "mosaic-agent@coder0.service",
        "mosaic-agent@reviewer.service",
        "mosaic-agent@one-shot.service",
    )
    assert plan.stop == plan.disable == ()
    assert plan.remove_files == ()
    assert "enable mosaic-agent@coder0.service" in plan.describe()


def test_reinstall_same_roster_changes_no_file() -> None:
    first = install.compute_install_plan(CTX, ROSTER, install.InstalledState(Path("/u")))
    again = install.compute_install_plan(CTX, ROSTER, _installed_after(first))
    assert again.changed_files == ()
    assert "enable mosaic-tmux-holder.service (already enabled)" in again.describe()


def test_plan_after_roster_change() -> None:
    first = install.compute_install_plan(CTX, ROSTER, install.InstalledState(Path("/u")))
    changed = Roster(
        path=ROSTER.path,
        agents=(Agent("coder0", "codex", restart=RestartPolicy.ALWAYS), Agent("new", "shell")),
    )
    plan = install.compute_install_plan(CTX, changed, _installed_after(first))
    actions = {w.path.parent.name: w.action for w in plan.writes}
    assert actions["mosaic-agent@coder0.service.d"] == "update"
    assert actions["mosaic-agent@new.service.d"] == "create"
    assert plan.stop == ("mosaic-agent@one-shot.service", "mosaic-agent@reviewer.service")
    assert plan.disable == plan.stop
    assert plan.remove_files == (
        Path("/u/mosaic-agent@one-shot.service.d/10-mosaic.conf"),
        Path("/u/mosaic-agent@reviewer.service.d/10-mosaic.conf"),
    )
    assert "mosaic-agent@new.service" in plan.enable


def test_no_enable_plan_enables_nothing() -> None:
    plan = install.compute_install_plan(
        CTX, ROSTER, install.InstalledState(Path("/u")), enable=False
    )
    assert plan.enable == ()
    assert not any(line.startswith("enable") for line in plan.describe())


def test_uninstall_plan() -> None:
    first = install.compute_install_plan(CTX, ROSTER, install.InstalledState(Path("/u")))
    state = _installed_after(first)
    plan = install.compute_uninstall_plan(
        state, loaded=[units.HOLDER_UNIT, "mosaic-agent@coder0.service", "mosaic-agent@x.service"]
    )
    assert plan.stop == (
        "mosaic-agent@coder0.service",
        "mosaic-agent@x.service",
        units.HOLDER_UNIT,
    )
    assert plan.disable[-1] == units.HOLDER_UNIT
    assert set(plan.remove_files) == set(state.files)
    assert plan.enable == () and plan.writes == ()


def test_linger_state_falls_back_to_the_linger_directory(tmp_path: Path) -> None:
    user = "mosaic-no-such-user"  # loginctl cannot answer for it; the directory decides
    assert install.linger_state(user, linger_dir=tmp_path / "missing") == "unknown"
    assert install.linger_state(user, linger_dir=tmp_path) == "no"
    (tmp_path / user).touch()
    assert install.linger_state(user, linger_dir=tmp_path) == "yes"
    assert install.linger_advice("yes") is None
    advice = install.linger_advice("no")
    assert advice is not None and "loginctl enable-linger" in advice
