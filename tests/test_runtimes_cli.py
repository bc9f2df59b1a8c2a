"""`mosaic fleet runtimes`: every runtime, whether its program is installed, and the program
version its profile was verified on; through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleetkit import mosaic, ok, write_roster

BUILTINS = ["codex", "claude", "gemini", "opencode", "aider", "shell", "demo"]
VERIFIED = {
    "codex": "Codex CLI 0.171.0",
    "claude": "Claude Code 2.1.332",
    "gemini": "Gemini CLI 0.61.0",
    "opencode": "opencode 1.18.33",
    "aider": "aider 0.86.2",
}


def listing(env: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(env, "runtimes", "--json").out)["runtimes"]
    return rows


def with_program(env: dict[str, str], tmp: Path, name: str) -> dict[str, str]:
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    program = bindir / name
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return {**env, "PATH": f"{bindir}:/usr/bin:/bin"}


def test_builtins_without_a_roster(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = with_program(fleet_env, tmp_path, "gemini")
    rows = listing(env)
    assert [r["name"] for r in rows] == BUILTINS
    by_name = {r["name"]: r for r in rows}
    for name, version in VERIFIED.items():
        assert by_name[name]["verified"] == version
    assert by_name["gemini"]["installed"] is True
    assert by_name["gemini"]["path"] == str(tmp_path / "bin" / "gemini")
    assert by_name["aider"]["installed"] is False and by_name["aider"]["path"] is None
    text = ok(env, "runtimes").out.splitlines()
    assert text[0].split() == ["runtime", "program", "installed", "verified", "on"]
    gemini = next(line for line in text if line.startswith("gemini "))
    assert str(tmp_path / "bin" / "gemini") in gemini and gemini.endswith("Gemini CLI 0.61.0")
    aider = next(line for line in text if line.startswith("aider "))
    assert aider.split()[2] == "no"


def test_custom_runtimes_from_the_roster(fleet_env: dict[str, str], tmp_path: Path) -> None:
    write_roster(
        fleet_env,
        "version: 1\nruntimes:\n  zz-tui:\n    command: [zz-tui, --flag]\n"
        "  mytui:\n    command: [/bin/cat]\n    profile: aider\nagents: []\n",
    )
    rows = listing(fleet_env)
    assert [r["name"] for r in rows] == [*BUILTINS, "mytui", "zz-tui"]
    mytui, zz = rows[-2], rows[-1]
    assert (mytui["installed"], mytui["builtin"], mytui["profile"]) == (True, False, "aider")
    assert (zz["program"], zz["installed"], zz["verified"]) == ("zz-tui", False, None)


def test_a_broken_roster_is_reported_not_a_traceback(fleet_env: dict[str, str]) -> None:
    path = write_roster(fleet_env, "version: 1\nruntimes:\n  bad:\n    comand: [x]\n")
    res = mosaic(fleet_env, "runtimes")
    assert res.code == 2
    assert f"{path}:4:" in res.err and "Traceback" not in res.err
    assert res.out == ""
