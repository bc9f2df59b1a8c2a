"""`mosaic fleet status [AGENT] --json` is answered before click is imported
(`cli.quickstatus`), by the running watcher when it can (`watch/serve.py`); what a script
reads must not depend on which path answered.

Each case runs the command as a user does (the watcher answering it where it runs), the
same command with the watcher never asked, and the click command itself
(`mosaic.cli.main.main`), and compares stdout, stderr and exit status byte for byte
(`statuskit`: moving fields masked).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetkit import ok, shell_roster, status, write_roster
from helpers import wait_until
from mosaic import __version__
from statuskit import run, same_every_way, standalone_watcher


def test_a_running_fleet_reads_the_same_every_way(
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
    wait_until(lambda: run(fleet_env, ["fleet", "status", "--json"]).served, timeout=30,
               what="the watcher serving status")  # fmt: skip
    # Once the watcher has seen both running agents, the three runs cannot differ by it.
    wait_until(lambda: all(r["activity_since"] for r in status(fleet_env)["agents"]
                           if r["state"] == "running"),
               timeout=30, what="the watcher's first look at a1 and b1")  # fmt: skip
    whole = same_every_way(fleet_env, "status", "--json", served=True)
    assert whole.code == 0 and '"name": "a2"' in whole.out
    one = same_every_way(fleet_env, "status", "a1", "--json", served=True)
    assert one.code == 0 and '"name": "a2"' not in one.out
    same_every_way(fleet_env, "status", "--json", "b1", served=True)
    unknown = same_every_way(fleet_env, "status", "zz", "--json", served=True)
    assert unknown.code == 2 and "unknown agent 'zz'" in unknown.err and unknown.out == ""
    roster = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"
    same_every_way(fleet_env, "--roster", str(roster), "status", "--json", served=True)
    home = fleet_env["MOSAIC_HOME"]
    same_every_way(fleet_env, f"--mosaic-home={home}", "status", "--json", served=True)
    # A controller asking this machine as a host (docs/hosts.md) is served like a person;
    # one of another release is refused by click's group, as before (exit 2, no document).
    same_every_way(fleet_env, "--controller-version", __version__, "status", "--json",
                   served=True)  # fmt: skip
    other = run(fleet_env, ["fleet", "--controller-version", "0.2.1", "status", "--json"])
    assert other.clicked and other.code == 2 and other.out == ""
    assert other.err.startswith("incompatible mosaic version: mosaic 0.1.0 here")
    # Another roster path (even one with the same text) is the caller's own business.
    copy = tmp_path / "copy.yaml"
    copy.write_bytes(roster.read_bytes())
    same_every_way(fleet_env, "--roster", str(copy), "status", "--json", served=False)
    ok(fleet_env, "stop")
    same_every_way(fleet_env, "status", "--json", served=False)


def test_a_stopped_fleet_and_errors_read_the_same_every_way(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    alone = same_every_way(fleet_env, "status", "--json", served=False)
    assert alone.code == 0 and '"holder": "stopped"' in alone.out
    # A watcher of a fleet whose tmux server is down still answers (as the command would).
    with standalone_watcher(fleet_env, tmp_path):
        stopped = same_every_way(fleet_env, "status", "--json", served=True)
        assert stopped.code == 0 and '"holder": "stopped"' in stopped.out
        assert stopped.out != alone.out  # the watcher reports itself
        unknown = same_every_way(fleet_env, "status", "zz", "--json", served=True)
        assert unknown.code == 2 and "unknown agent 'zz'" in unknown.err and unknown.out == ""
        nowhere = str(tmp_path / "none.yaml")
        missing = same_every_way(fleet_env, "--roster", nowhere, "status", "--json",
                                 served=False)  # fmt: skip
        assert missing.code == 2 and "roster not found" in missing.err
        write_roster(fleet_env, "version: 1\nagents:\n  - {name: a1, runtime: dmeo}\n")
        bad = same_every_way(fleet_env, "status", "--json", served=True)
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
    answered = run(fleet_env, ["fleet", *argv])
    assert answered.clicked
    assert "Traceback" not in answered.err
