"""Every key of an agent's roster `env` is in its runtime's environment, PATH included,
when it starts and when its supervisor restarts it, under both supervisors.

tmux gives a new pane the PATH of the tmux client that asked for it, and its own TERM,
SHELL and TMUX, over the session environment; so a roster PATH used to find the program
and was then lost. The runtime here is a real program (tests/fixtures/programs/envdump.py)
that writes the environment it got; the supervisors are the real tmux hook path and a real
private systemd user manager (systemd_harness).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from fleetkit import mosaic, ok, sessions, status, write_roster
from helpers import wait_until
from systemd_harness import UserManager, user_manager

__all__ = ["user_manager"]  # the fixture, imported for pytest

ENVDUMP = Path(__file__).resolve().parent / "fixtures" / "programs" / "envdump.py"


def roster(tmp: Path, out: Path) -> tuple[str, dict[str, str]]:
    """A roster whose agent sets PATH (to a directory only it has), variables tmux itself
    sets (TERM, SHELL), and a value with spaces, quotes and `=` in it."""
    own_bin = tmp / "own bin"
    own_bin.mkdir()
    wanted = {
        "PATH": f"{own_bin}:/usr/bin:/bin",
        "TERM": "xterm-256color",
        "SHELL": "/bin/sh",
        "MOSAIC_T_VALUE": "a b=c 'q' \"d\" $(x)",
    }
    env_yaml = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in wanted.items())
    body = (
        "version: 1\n"
        "runtimes:\n"
        "  envdump:\n"
        f"    command: [{json.dumps(sys.executable)}, {json.dumps(str(ENVDUMP))}, "
        f"{json.dumps(str(out))}]\n"
        "agents:\n"
        "  - name: dump\n"
        "    runtime: envdump\n"
        "    restart: always\n"
        "    env:\n"
        f"{env_yaml}"
    )
    return body, wanted


def dumps(out: Path) -> dict[int, dict[str, Any]]:
    found = {}
    for path in out.glob("*.json"):
        doc = json.loads(path.read_text())
        found[int(doc["pid"])] = doc["env"]
    return found


def check(env: dict[str, str], wanted: dict[str, str]) -> None:
    assert {k: env.get(k) for k in wanted} == wanted


def pid_of(env: dict[str, str]) -> int | None:
    row = status(env)["agents"][0]
    return int(row["pid"]) if row["state"] == "running" and row["pid"] else None


def kill_and_wait_for_the_next(env: dict[str, str], out: Path, first: int) -> dict[str, Any]:
    os.kill(first, signal.SIGKILL)
    again = wait_until(
        lambda: [pid for pid in dumps(out) if pid != first],
        timeout=30, interval=0.1, what="the runtime restarted",
    )  # fmt: skip
    assert len(again) == 1
    return dumps(out)[again[0]]


def test_tmux_supervisor_start_and_respawn(fleet_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    body, wanted = roster(tmp_path, out)
    write_roster(fleet_env, body)
    ok(fleet_env, "start", "dump")
    first = wait_until(lambda: pid_of(fleet_env), what="dump running")
    got = wait_until(lambda: dumps(out).get(first), what="the first dump")
    check(got, wanted)
    # The pane-died hook respawns the pane from a process with its own PATH.
    check(kill_and_wait_for_the_next(fleet_env, out, first), wanted)
    ok(fleet_env, "stop")


def test_systemd_supervisor_start_and_restart(
    user_manager: UserManager, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = user_manager.env_for(fleet_env)
    env["MOSAIC_FLEET_SUPERVISOR"] = "systemd"
    out = tmp_path / "out"
    out.mkdir()
    body, wanted = roster(tmp_path, out)
    write_roster(env, body)
    ok(env, "install")
    ok(env, "start")
    first = wait_until(lambda: pid_of(env), timeout=30, what="dump running")
    got = wait_until(lambda: dumps(out).get(first), what="the first dump")
    check(got, wanted)
    # systemd restarts the unit, whose process runs with the unit's own PATH.
    check(kill_and_wait_for_the_next(env, out, first), wanted)
    ok(env, "stop")


@pytest.mark.parametrize("hostile", ["a=b", "x y=z"])
def test_a_program_path_env_cannot_run_is_refused_before_anything_starts(
    fleet_env: dict[str, str], tmp_path: Path, hostile: str
) -> None:
    """env(1) reads an argument with `=` as a variable, so such a program path is refused
    with a clear error, nothing started."""
    bindir = tmp_path / hostile
    bindir.mkdir()
    program = bindir / "agentcli"
    program.write_text("#!/bin/sh\nexec sleep 60\n")
    program.chmod(0o755)
    write_roster(
        fleet_env,
        "version: 1\nruntimes:\n  cli:\n"
        f"    command: [{json.dumps(str(program))}]\n"
        "agents:\n  - name: a\n    runtime: cli\n    env: {X: '1'}\n",
    )
    res = mosaic(fleet_env, "start")
    assert res.code == 2, res
    assert "contains '='" in res.err and "Traceback" not in res.err
    assert sessions(fleet_env) == []
