"""`mosaic fleet status [AGENT] --json` is answered before click is imported
(`cli.quickstatus`); what a script reads must not depend on which path answered.

Each case runs the fast path (`python -m mosaic ...`, checked with -X importtime to have
not imported click) and the click command itself (`mosaic.cli.main.main`), and compares
stdout, stderr and exit status byte for byte. The fields that move between two runs (the
uptime and what the watcher times) are masked; everything else (key order, spacing, every
value) must be equal.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetkit import ok, shell_roster, status, write_roster
from helpers import wait_until

# Values that move between two runs a moment apart: the uptime, and what the watcher says
# about how long the screen has been as it is.
_MOVING = re.compile(
    r'"(uptime_s|last_output_age_s|latency_ms)": [0-9.]+'
    r'|"activity_since": "[^"]*"|"last_tick_age_s": [0-9.]+'
)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    clicked: bool


def _run(env: dict[str, str], argv: list[str], *, via_click: bool) -> Run:
    if via_click:
        code = "import sys; from mosaic.cli.main import main; sys.exit(main(sys.argv[1:]))"
        cmd = [sys.executable, "-X", "importtime", "-c", code, *argv]
    else:
        cmd = [sys.executable, "-X", "importtime", "-m", "mosaic", *argv]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
    lines = proc.stderr.decode().splitlines()
    imports = [ln for ln in lines if ln.startswith("import time:")]
    clicked = any(ln.split("|")[-1].strip() == "click" for ln in imports)
    err = "".join(ln + "\n" for ln in lines if not ln.startswith("import time:"))
    out = _MOVING.sub(lambda m: f'"{m.group(1) or "moving"}": X', proc.stdout.decode())
    return Run(proc.returncode, out, err, clicked)


def _same_both_ways(env: dict[str, str], *argv: str) -> Run:
    fast = _run(env, ["fleet", *argv], via_click=False)
    slow = _run(env, ["fleet", *argv], via_click=True)
    assert not fast.clicked, f"fleet {' '.join(argv)} was not answered by the fast path"
    assert slow.clicked
    assert (fast.code, fast.out, fast.err) == (slow.code, slow.out, slow.err)
    return fast


def test_a_running_fleet_reads_the_same_either_way(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    write_roster(fleet_env, shell_roster(["a1", "a2", "b1"]))
    ok(fleet_env, "start", "a1")
    ok(fleet_env, "start", "b1")
    wait_until(
        lambda: {r["name"]: r["state"] for r in status(fleet_env)["agents"]}
        == {"a1": "running", "a2": "stopped", "b1": "running"},
        timeout=30,
    )
    whole = _same_both_ways(fleet_env, "status", "--json")
    assert whole.code == 0 and '"name": "a2"' in whole.out
    one = _same_both_ways(fleet_env, "status", "a1", "--json")
    assert one.code == 0 and '"name": "a2"' not in one.out
    _same_both_ways(fleet_env, "status", "--json", "b1")
    roster = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"
    _same_both_ways(fleet_env, "--roster", str(roster), "status", "--json")
    _same_both_ways(fleet_env, f"--mosaic-home={fleet_env['MOSAIC_HOME']}", "status", "--json")
    ok(fleet_env, "stop")


def test_a_stopped_fleet_and_errors_read_the_same_either_way(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    stopped = _same_both_ways(fleet_env, "status", "--json")
    assert stopped.code == 0 and '"holder": "stopped"' in stopped.out
    unknown = _same_both_ways(fleet_env, "status", "zz", "--json")
    assert unknown.code == 2 and "unknown agent 'zz'" in unknown.err and unknown.out == ""
    nowhere = str(tmp_path / "none.yaml")
    missing = _same_both_ways(fleet_env, "--roster", nowhere, "status", "--json")
    assert missing.code == 2 and "roster not found" in missing.err
    write_roster(fleet_env, "version: 1\nagents:\n  - {name: a1, runtime: dmeo}\n")
    bad = _same_both_ways(fleet_env, "status", "--json")
    assert bad.code == 2 and "unknown runtime 'dmeo'" in bad.err


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],  # the table is for people: rich, through click
        ["status", "--json", "--json"],
        ["status", "--json", "a1", "a2"],
        ["status", "--json", "-h"],
        ["--rooster", "x", "status", "--json"],
        ["--mosaic-home", "/etc/hostname", "status", "--json"],  # a file: click refuses it
        ["--roster", "/", "status", "--json"],  # a directory: click refuses it
    ],
)
def test_anything_but_a_plain_status_json_is_left_to_click(
    fleet_env: dict[str, str], argv: list[str]
) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    run = _run(fleet_env, ["fleet", *argv], via_click=False)
    assert run.clicked
    assert "Traceback" not in run.err
