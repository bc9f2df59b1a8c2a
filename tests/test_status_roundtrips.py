"""`status` costs the same number of tmux invocations for 1 agent and for 50."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fleetkit import ok, shell_roster, status, write_roster
from helpers import wait_until


def _counting_tmux(tmp: Path) -> tuple[Path, Path]:
    """A `tmux` first on PATH that logs each invocation, then runs the real one."""
    real = shutil.which("tmux")
    assert real is not None
    bindir = tmp / "bin"
    bindir.mkdir(parents=True)
    log = tmp / "tmux-calls.log"
    shim = bindir / "tmux"
    # One fixed line per call: the arguments themselves may hold line separators.
    shim.write_text(f'#!/bin/sh\necho call >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    return bindir, log


def _calls_for_status(env: dict[str, str], tmp: Path, n: int) -> int:
    names = [f"a{i}" for i in range(n)]
    write_roster(env, shell_roster(names))
    ok(env, "start")
    wait_until(lambda: all(r["state"] == "running" for r in status(env)["agents"]), timeout=60)
    bindir, log = _counting_tmux(tmp)
    counted = dict(env, PATH=f"{bindir}{os.pathsep}{env['PATH']}")
    doc = status(counted)
    assert len(doc["agents"]) == n
    assert {r["activity"] for r in doc["agents"]} <= {"idle", "busy", "unknown"}
    calls = log.read_text().splitlines()
    ok(env, "stop")
    return len(calls)


def test_status_round_trips_do_not_grow_with_the_fleet(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    one = _calls_for_status(fleet_env, tmp_path / "one", 1)
    fifty = _calls_for_status(fleet_env, tmp_path / "fifty", 50)
    assert one == fifty
    assert one <= 3
