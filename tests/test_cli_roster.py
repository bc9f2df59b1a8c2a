"""The roster commands as a user runs them: exit codes, stderr lines, files, path resolution."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from helpers import run_mosaic
from mosaic.config import presets


def _roster(env: dict[str, str]) -> Path:
    return Path(env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"


def test_presets_lists_every_preset_with_a_line(fleet_env: dict[str, str]) -> None:
    r = run_mosaic(["fleet", "presets"], fleet_env)
    assert r.code == 0
    lines = r.out.splitlines()
    assert [line.split()[0] for line in lines] == presets.names()
    assert all(len(line.split(None, 1)) == 2 for line in lines)


def test_init_writes_private_files_and_refuses_to_overwrite(fleet_env: dict[str, str]) -> None:
    r = run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env)
    assert r.code == 0, r.err
    path = _roster(fleet_env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(fleet_env["MOSAIC_HOME"]).stat().st_mode) == 0o700
    before = path.read_bytes()
    again = run_mosaic(["fleet", "init", "--preset", "solo"], fleet_env)
    assert again.code == 2
    assert "already exists" in again.err and "--force" in again.err
    assert "Traceback" not in again.err
    assert path.read_bytes() == before
    forced = run_mosaic(["fleet", "init", "--preset", "solo", "--force"], fleet_env)
    assert forced.code == 0
    assert path.read_text() == presets.render("solo")


def test_unknown_preset_is_a_usage_error(fleet_env: dict[str, str]) -> None:
    r = run_mosaic(["fleet", "init", "--preset", "nope"], fleet_env)
    assert r.code == 2
    assert r.err.strip() == "unknown preset 'nope'; presets: solo, pair, squad, demo"


def test_validate_prints_every_problem_as_file_line_col(fleet_env: dict[str, str]) -> None:
    path = _roster(fleet_env)
    path.parent.mkdir(parents=True)
    path.write_text("version: 1\nagents:\n  - name: a\n    runtime: codx\n    runtme: x\n")
    r = run_mosaic(["fleet", "validate"], fleet_env)
    assert r.code == 2
    assert r.out == ""
    assert r.err.splitlines() == [
        f"{path}:4:14: unknown runtime 'codx' (did you mean 'codex'?)",
        f"{path}:5:5: unknown key 'runtme' (did you mean 'runtime'?)",
    ]


def test_validate_binary_garbage_is_exit_2_without_traceback(fleet_env: dict[str, str]) -> None:
    path = _roster(fleet_env)
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(64) + b"\xff")
    r = run_mosaic(["fleet", "validate"], fleet_env)
    assert r.code == 2
    assert r.err.startswith(f"{path}:")
    assert "Traceback" not in r.err


def test_validate_ok_and_missing_program_warning(fleet_env: dict[str, str]) -> None:
    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    ok = run_mosaic(["fleet", "validate"], fleet_env)
    assert ok.code == 0
    assert ok.out.strip() == f"OK: {_roster(fleet_env)}: 3 agents"
    assert ok.err == ""
    env = {**fleet_env, "PATH": "/nonexistent"}
    added = run_mosaic(["fleet", "add", "cx", "--runtime", "codex"], env)
    assert added.code == 0, added.err
    warned = run_mosaic(["fleet", "validate"], env)
    assert warned.code == 0
    assert "WARNING: program 'codex' (runtime codex) not found on PATH; used by cx" in warned.err


def test_add_and_remove_round_trip_through_the_cli(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    (tmp_path / "wd").mkdir()
    r = run_mosaic(
        [
            "fleet",
            "add",
            "x1",
            "--runtime",
            "demo",
            "--workdir",
            "wd",
            "--arg",
            "--think",
            "--arg",
            "1",
            "--env",
            "A=b=c",
        ],
        fleet_env,
        cwd=tmp_path,
    )
    assert r.code == 0, r.err
    text = _roster(fleet_env).read_text()
    assert f"workdir: {tmp_path / 'wd'}" in text
    assert "env: {A: b=c}" in text
    assert run_mosaic(["fleet", "remove", "x1"], fleet_env).code == 0
    assert _roster(fleet_env).read_text() == presets.render("demo")


def test_add_errors_exit_2_with_clear_messages(fleet_env: dict[str, str]) -> None:
    missing = run_mosaic(["fleet", "add", "a", "--runtime", "demo"], fleet_env)
    assert missing.code == 2
    assert "mosaic fleet init" in missing.err
    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    cases = {
        ("demo0", "demo"): "agent 'demo0' already exists",
        ("Bad.Name", "demo"): "invalid agent name 'Bad.Name'",
        ("ok", "codx"): "unknown runtime 'codx' (did you mean 'codex'?)",
    }
    for (name, runtime), message in cases.items():
        r = run_mosaic(["fleet", "add", name, "--runtime", runtime], fleet_env)
        assert r.code == 2, r
        assert message in r.err
        assert "Traceback" not in r.err
    bad_env = run_mosaic(["fleet", "add", "ok", "--runtime", "demo", "--env", "NOEQ"], fleet_env)
    assert bad_env.code == 2
    assert "KEY=VALUE" in bad_env.err


def test_remove_unknown_agent_lists_known_ones(fleet_env: dict[str, str]) -> None:
    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    r = run_mosaic(["fleet", "remove", "ghost"], fleet_env)
    assert r.code == 2
    assert r.err.strip() == "unknown agent 'ghost'; known agents: demo0, demo1, demo2"


def test_roster_path_resolution_flags_and_env(fleet_env: dict[str, str], tmp_path: Path) -> None:
    # --roster beats $MOSAIC_FLEET_ROSTER beats <home>/fleet/roster.yaml.
    env_roster = tmp_path / "env" / "r.yaml"
    flag_roster = tmp_path / "flag" / "r.yaml"
    env = {**fleet_env, "MOSAIC_FLEET_ROSTER": str(env_roster)}
    assert run_mosaic(["fleet", "init", "--preset", "demo"], env).code == 0
    assert env_roster.is_file()
    assert not _roster(fleet_env).exists()
    assert (
        run_mosaic(["fleet", "--roster", str(flag_roster), "init", "--preset", "pair"], env).code
        == 0
    )
    assert flag_roster.read_text() == presets.render("pair")
    assert env_roster.read_text() == presets.render("demo")
    # --mosaic-home beats $MOSAIC_HOME; $XDG_CONFIG_HOME is used when MOSAIC_HOME is unset.
    flag_home = tmp_path / "fh"
    assert run_mosaic(["fleet", "--mosaic-home", str(flag_home), "init"], fleet_env).code == 0
    assert (flag_home / "fleet" / "roster.yaml").is_file()
    xdg = tmp_path / "xdg"
    xdg_env = {k: v for k, v in fleet_env.items() if k != "MOSAIC_HOME"}
    xdg_env["XDG_CONFIG_HOME"] = str(xdg)
    assert run_mosaic(["fleet", "init"], xdg_env).code == 0
    assert (xdg / "mosaic" / "fleet" / "roster.yaml").is_file()
    home_env = {k: v for k, v in xdg_env.items() if k != "XDG_CONFIG_HOME"}
    assert run_mosaic(["fleet", "init"], home_env).code == 0
    assert (Path(home_env["HOME"]) / ".config" / "mosaic" / "fleet" / "roster.yaml").is_file()
