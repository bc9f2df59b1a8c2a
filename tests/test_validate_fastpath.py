"""`mosaic fleet validate` run again on an unchanged roster is answered without click
(`cli.quickvalidate`). What a user must never notice is a difference: every run has to say
what a full validation would say now, whatever changed in between (the roster, a variable
it uses, an installed program, the path it was given, a damaged cache).

Which path answered is read from `python -X importtime`: the fast path never imports click.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import run_mosaic


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    fast: bool


def _validate(env: dict[str, str], *flags: str, cwd: Path | None = None) -> Run:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mosaic", "fleet", *flags, "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    imports = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
    err = "".join(ln + "\n" for ln in proc.stderr.splitlines() if not ln.startswith("import time:"))
    assert imports, "no -X importtime output: cannot tell which path answered"
    fast = not any(ln.split("|")[-1].strip() == "click" for ln in imports)
    return Run(proc.returncode, proc.stdout, err, fast)


def _roster(env: dict[str, str]) -> Path:
    return Path(env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"


def _write(env: dict[str, str], text: str) -> Path:
    path = _roster(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _same(a: Run, b: Run) -> bool:
    return (a.code, a.out, a.err) == (b.code, b.out, b.err)


def test_an_unchanged_roster_is_answered_fast_with_the_same_words(
    fleet_env: dict[str, str],
) -> None:
    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    first = _validate(fleet_env)
    assert first.code == 0 and not first.fast
    assert first.out == f"OK: {_roster(fleet_env)}: 3 agents\n"
    second = _validate(fleet_env)
    assert second.fast
    assert _same(first, second)


def test_an_edited_roster_is_validated_again(fleet_env: dict[str, str]) -> None:
    good = "version: 1\nagents:\n  - name: a\n    runtime: demo\n"
    path = _write(fleet_env, good)
    assert _validate(fleet_env).code == 0
    assert _validate(fleet_env).fast
    # Same length, one byte different: nothing but the content tells them apart.
    _write(fleet_env, good.replace("demo", "dmeo"))
    bad = _validate(fleet_env)
    assert bad.code == 2 and not bad.fast
    assert bad.err == f"{path}:4:14: unknown runtime 'dmeo' (did you mean 'demo'?)\n"
    assert _validate(fleet_env).code == 2  # an invalid roster is never answered from cache
    _write(fleet_env, good)  # back to the bytes the cache still answers for
    back = _validate(fleet_env)
    assert back.fast and (back.code, back.out) == (0, f"OK: {path}: 1 agent\n")


def test_a_variable_the_roster_uses_is_looked_at_again(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    path = _write(
        fleet_env, "version: 1\nagents:\n  - {name: a, runtime: demo, workdir: $PROJECT/x}\n"
    )
    with_var = {**fleet_env, "PROJECT": str(tmp_path)}
    assert _validate(with_var).code == 0
    assert _validate(with_var).fast
    # A variable the roster does not use changes nothing.
    assert _validate({**with_var, "UNRELATED": "1"}).fast
    unset = _validate(fleet_env)
    assert unset.code == 2 and not unset.fast
    assert unset.err == f"{path}:3:39: workdir '$PROJECT/x' uses unset variable(s): PROJECT\n"
    other = _validate({**fleet_env, "PROJECT": "/elsewhere"})
    assert other.code == 0 and not other.fast


def test_installed_programs_are_checked_on_every_run(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _write(
        fleet_env,
        "version: 1\nruntimes:\n  tool: {command: [mytool]}\n"
        "agents:\n  - {name: a, runtime: tool}\n  - {name: b, runtime: tool}\n",
    )
    env = {**fleet_env, "PATH": f"{bindir}{os.pathsep}{fleet_env['PATH']}"}
    warning = "WARNING: program 'mytool' (runtime tool) not found on PATH; used by a, b\n"
    missing = _validate(env)
    assert (missing.code, missing.err, missing.fast) == (0, warning, False)
    assert _same(_validate(env), missing)

    tool = bindir / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    installed = _validate(env)
    assert (installed.code, installed.err, installed.fast) == (0, "", True)

    tool.unlink()
    again = _validate(env)
    assert (again.code, again.err, again.fast) == (0, warning, True)


def test_the_same_bytes_at_another_path_name_that_path(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    text = "version: 1\nagents:\n  - {name: a, runtime: demo}\n"
    _write(fleet_env, text)
    assert _validate(fleet_env).code == 0
    other = tmp_path / "other.yaml"
    other.write_text(text)
    for flags in (("--roster", str(other)), (f"--roster={other}",)):
        r = _validate(fleet_env, *flags)
        assert (r.code, r.out) == (0, f"OK: {other}: 1 agent\n")
    relative = _validate(fleet_env, "--roster", "other.yaml", cwd=tmp_path)
    assert relative.fast and relative.out == f"OK: {other}: 1 agent\n"
    home = _validate(fleet_env, "--mosaic-home", fleet_env["MOSAIC_HOME"], "--roster", str(other))
    assert home.fast and home.out == f"OK: {other}: 1 agent\n"


def test_a_damaged_or_foreign_cache_is_not_believed(fleet_env: dict[str, str]) -> None:
    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    first = _validate(fleet_env)
    cache = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "run" / "validate-cache"
    assert cache.exists()
    cache.write_bytes(b"\x00garbage")
    damaged = _validate(fleet_env)
    assert _same(damaged, first) and not damaged.fast
    assert _validate(fleet_env).fast
    cache.chmod(0o666)  # writable by others: could say anything
    foreign = _validate(fleet_env)
    assert _same(foreign, first) and not foreign.fast


def test_rosters_whose_commands_come_from_the_environment_are_always_validated(
    fleet_env: dict[str, str],
) -> None:
    # `shell` runs $SHELL when it is installed: nothing about it can be keyed on the text.
    _write(fleet_env, "version: 1\nagents:\n  - {name: sh, runtime: shell}\n")
    assert _validate(fleet_env).code == 0
    again = _validate(fleet_env)
    assert again.code == 0 and not again.fast


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["validate", "--help"], 0),
        (["--roster", "validate"], 2),  # "validate" is the roster's value: no command
        (["--rooster", "x", "validate"], 2),
        (["--roster", "/nonexistent/a.yaml", "--roster", "/nonexistent/b.yaml", "validate"], 2),
    ],
)
def test_anything_but_a_plain_validate_is_left_to_click(
    fleet_env: dict[str, str], args: list[str], code: int
) -> None:
    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    assert _validate(fleet_env).code == 0  # the cache holds an answer for the default roster
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mosaic", "fleet", *args],
        env=fleet_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == code
    assert any(ln.split("|")[-1].strip() == "click" for ln in proc.stderr.splitlines())
    assert "Traceback" not in proc.stderr


def test_concurrent_validates_of_two_rosters_each_get_their_own_answer(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    rosters = {}
    for count in (1, 2):
        path = tmp_path / f"r{count}.yaml"
        agents = "".join(f"  - {{name: a{i}, runtime: demo}}\n" for i in range(count))
        path.write_text(f"version: 1\nagents:\n{agents}")
        rosters[path] = f"OK: {path}: {count} agent{'s' if count > 1 else ''}\n"
    # Both share one home, so one outcome cache that every run overwrites.
    jobs = [path for _ in range(8) for path in rosters]
    with ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(lambda p: _validate(fleet_env, "--roster", str(p)), jobs))
    for path, run in zip(jobs, runs, strict=True):
        assert (run.code, run.out, run.err) == (0, rosters[path], "")


# Every config module whose code decides what `validate` says about a roster.
DECIDING_MODULES = (
    "checker.py", "load.py", "names.py", "programs.py", "roster.py", "rostercache.py",
    "runtimes.py", "yamlguard.py", "yamlio.py",
)  # fmt: skip


def _copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_an_edit_to_any_module_the_outcome_depends_on_makes_the_fast_path_miss(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    # A copy of the package first on PYTHONPATH stands for an upgraded or edited install.
    import mosaic

    lib = tmp_path / "lib"
    pkg = _copy_tree(Path(mosaic.__file__).parent, lib / "mosaic")
    env = {**fleet_env, "PYTHONPATH": str(lib)}
    assert run_mosaic(["fleet", "init", "--preset", "demo"], env).code == 0
    first = _validate(env)
    assert first.code == 0 and not first.fast
    assert _validate(env).fast
    for name in DECIDING_MODULES:
        module = pkg / "config" / name
        with module.open("a") as f:
            f.write("# edited\n")
        edited = _validate(env)
        assert not edited.fast, f"an edit to config/{name} was answered from the cache"
        assert _same(edited, first)
        assert _validate(env).fast  # and the entry written after it serves the next run


def test_another_ruamel_yaml_makes_the_fast_path_miss(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    import importlib.util

    spec = importlib.util.find_spec("ruamel.yaml")
    assert spec is not None and spec.origin is not None
    installed = Path(spec.origin).parent
    # The same parser under another version number, ahead of the installed one.
    lib = tmp_path / "lib"
    fake = _copy_tree(installed, lib / "ruamel" / "yaml")
    init = fake / "__init__.py"
    text = init.read_text()
    assert "version_info=(0, 19," in text
    init.write_text(text.replace("version_info=(0, 19,", "version_info=(0, 19, 99, "))
    other = {**fleet_env, "PYTHONPATH": str(lib)}

    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    first = _validate(fleet_env)
    assert _validate(fleet_env).fast
    switched = _validate(other)
    assert not switched.fast, "a different ruamel.yaml was answered from the cache"
    assert _same(switched, first)
    assert _validate(other).fast
    back = _validate(fleet_env)
    assert not back.fast and _same(back, first)
