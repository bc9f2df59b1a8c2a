"""A host that cannot be reached: its agents keep running (it supervises them itself),
`status` degrades instead of failing, commands for other machines' agents still work, and
a command that needs it exits 1 naming it. One connection per host is reused."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetkit import mosaic, ok, write_roster
from helpers import wait_until
from hostlab import Lab, all_running, open_lab, recording, rows, status_doc
from statuskit import run, served

AGENTS = [("loc", None), ("r1", "h1"), ("r2", "h2")]


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


def test_a_lost_host_stops_nothing_and_status_degrades(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1, _ = lab.add("h1"), lab.add("h2")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, AGENTS))
    ok(env, "start")
    before = wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=30,
                        what="every agent running")  # fmt: skip

    h1.kill_sshd()

    # On h1 itself nothing changed: its own tmux server still runs r1, same pid.
    assert int(h1.tmux("list-panes", "-t", "=r1", "-F", "#{pane_pid}")) == before["r1"]["pid"]

    doc = status_doc(env)  # exit 0: status reports, it does not fail
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert hosts["h1"]["reachable"] is False and hosts["h1"]["latency_ms"] is None
    assert "Connection refused" in hosts["h1"]["error"]  # ssh's own reason
    assert hosts["h2"]["reachable"] is True and hosts["local"]["reachable"] is True
    found = {a["name"]: a for a in doc["agents"]}
    assert found["r1"]["state"] == "unknown" and found["r1"]["reason"]
    assert found["r1"]["pid"] is None
    assert found["r2"]["state"] == "running" and found["r2"]["pid"] == before["r2"]["pid"]
    assert found["loc"]["state"] == "running" and found["loc"]["pid"] == before["loc"]["pid"]
    table = mosaic(env, "status")
    assert table.code == 0 and "h1" in table.out + table.err and "unknown" in table.out

    # Other machines' agents still answer.
    assert "demo>" in ok(env, "capture", "r2").out
    res = mosaic(env, "send", "r2", "loc", "--json", "still here")
    assert res.code == 0, res.err
    # What needs h1 fails, naming it.
    for args in (["capture", "r1"], ["logs", "r1"], ["start", "r1"], ["stop", "r1"]):
        res = mosaic(env, *args)
        assert res.code == 1, (args, res.out, res.err)
        assert "host h1 unreachable" in res.err, (args, res.err)
        assert "Traceback" not in res.err
    # A send that spans h1 types nothing anywhere: nothing reached r2 this time.
    res = mosaic(env, "send", "r1", "r2", "--json", "needs both")
    assert res.code == 1
    results = {r["agent"]: r for r in json.loads(res.out)["results"]}
    assert results["r1"]["outcome"] == "not_running"
    assert "host h1 unreachable" in results["r1"]["evidence"][0]
    assert results["r2"]["outcome"] == "skipped"
    ok(env, "send", "r2", "marker after")
    wait_until(lambda: recording(tmp_path / "r2.jsonl")[-1:] == ["marker after"], timeout=15,
               what="the later marker")  # fmt: skip
    assert "needs both" not in recording(tmp_path / "r2.jsonl")

    h1.start_sshd()
    after = wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=30,
                       what="h1 answering again")  # fmt: skip
    assert {n: a["pid"] for n, a in after.items()} == {n: a["pid"] for n, a in before.items()}
    assert all(h["reachable"] for h in status_doc(env)["hosts"])


def test_a_second_status_reuses_the_connection(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1")]))
    ok(env, "start")
    wait_until(lambda: all_running(env, ["r1"]), timeout=30, what="r1 running")
    accepted = h1.accepted()
    assert accepted >= 1 and h1.established() == 1
    for _ in range(3):
        assert rows(env)["r1"]["state"] == "running"
    # sshd logs every new connection; three more commands made none.
    assert h1.accepted() == accepted
    assert h1.established() == 1
    control = Path(env["MOSAIC_HOME"]) / "fleet" / "run" / "ssh"
    assert control.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in control.iterdir()] == ["h1"]


def test_status_asks_each_host_once_starting_before_click_loads(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """`status` starts each host's call ahead of its own start-up (hosts.prefetch); the
    command then takes that call over rather than asking again."""
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1")]))
    ok(env, "start")
    wait_until(lambda: all_running(env, ["r1"]), timeout=30, what="r1 running")
    wait_until(lambda: served(env), timeout=30, interval=0.2, what="the watcher serving")
    for args in (["status", "--json"], ["status"]):
        before = h1.sessions()
        assert "r1" in ok(env, *args).out
        assert h1.sessions() == before + 1, args
    # `status --json` is answered by this machine's watcher (which asks the host itself):
    # the command imports nothing of ssh. Without it (the watcher declines, or runs no
    # more), the call goes out before click is even imported, or, answered without click
    # (cli/quickstatus.py), before the document's own modules (import order, as Python
    # reports it).
    answered = run(env, ["fleet", "status", "--json"])
    assert answered.served and "mosaic.hosts.ssh" not in answered.imported
    for args in (["status"], ["status", "--json"]):
        before = h1.sessions()
        itself = run(env, ["fleet", *args], "local")
        assert itself.code == 0 and "r1" in itself.raw
        assert h1.sessions() == before + 1, args
        order = itself.order
        if itself.clicked:
            assert order.index("mosaic.hosts.ssh") < order.index("click"), args
        else:
            assert args == ["status", "--json"]
            assert order.index("mosaic.hosts.ssh") < order.index("mosaic.cli.render")
    # A status that fails before asking (a bad variable) leaves no ssh client behind.
    res = mosaic({**env, "MOSAIC_FLEET_SUPERVISOR": "bogus"}, "status", "--json")
    assert res.code == 2 and "MOSAIC_FLEET_SUPERVISOR" in res.err
    assert not _ssh_clients(Path(env["MOSAIC_HOME"]) / "fleet" / "run" / "ssh")


def _ssh_clients(control_dir: Path) -> list[int]:
    """ssh processes (masters aside) working in `control_dir`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and cwd == str(control_dir) and b"-T" in argv:
            found.append(int(proc.name))
    return found


def test_a_whole_stop_reports_an_unreachable_host_and_stops_the_rest(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1, h2 = lab.add("h1"), lab.add("h2")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, AGENTS))
    ok(env, "start")
    wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=30, what="running")
    h1.kill_sshd()
    res = mosaic(env, "stop")
    assert res.code == 1
    assert "[h2] r2: stopped" in res.out and "loc: stopped" in res.out
    assert "host h1 unreachable" in res.err
    assert h2.agent_sessions() == []
    assert h1.agent_sessions() == ["r1"]


def test_a_silent_partition_is_answered_within_a_bound(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """Packets to h1 vanish (its link is down): no refusal comes back, so only the
    timeouts can tell. status still answers, h1 unknown, the rest reported."""
    h1, _ = lab.add("h1"), lab.add("h2")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, AGENTS))
    ok(env, "start")
    before = wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=30,
                        what="every agent running")  # fmt: skip
    h1.link(up=False)
    t0 = time.monotonic()
    doc = status_doc(env)
    took = time.monotonic() - t0
    found = {a["name"]: a for a in doc["agents"]}
    assert found["r1"]["state"] == "unknown"
    assert found["r2"]["pid"] == before["r2"]["pid"] and found["loc"]["state"] == "running"
    # Bounded by the call's timeout (15 s), not a hang; margin for a loaded machine.
    assert took < 40, took
    h1.link(up=True)
    after = wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=40,
                       what="h1 back")  # fmt: skip
    assert after["r1"]["pid"] == before["r1"]["pid"]
