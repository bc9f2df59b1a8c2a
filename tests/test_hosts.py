"""Agents on several machines, end to end: a local agent and agents on two test hosts
(network namespaces with their own sshd, tests/hostlab.py), driven by the real CLI over
real OpenSSH."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetkit import mosaic, ok, write_roster
from helpers import Result, wait_until
from hostlab import Lab, all_running, open_lab, recording, rows, status_doc
from statuskit import run, same_every_way, served


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


AGENTS = [("loc", None), ("r1", "h1"), ("r2", "h2")]


def test_one_roster_runs_agents_here_and_on_two_hosts(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1, h2 = lab.add("h1"), lab.add("h2")
    env = lab.env(fleet_env)
    rec = tmp_path / "rec"
    rec.mkdir()
    write_roster(env, lab.demo_roster(rec, AGENTS))
    assert ok(env, "validate").out.startswith("OK")

    started = ok(env, "start").out
    assert "loc: started" in started
    assert "[h1] r1: started" in started and "[h2] r2: started" in started
    found = wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=30,
                       what="every agent running")  # fmt: skip
    assert {n: r["host"] for n, r in found.items()} == {"loc": "local", "r1": "h1", "r2": "h2"}

    # Each host runs its own agents on its own tmux server, with its own home.
    assert h1.agent_sessions() == ["r1"]
    assert h2.agent_sessions() == ["r2"]
    assert int(h1.tmux("list-panes", "-t", "=r1", "-F", "#{pane_pid}")) == found["r1"]["pid"]
    assert "r1" in (h1.home / "fleet" / "roster.yaml").read_text()
    assert "r2" not in (h1.home / "fleet" / "roster.yaml").read_text()

    doc = status_doc(env)
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert set(hosts) == {"local", "h1", "h2"}
    for h in hosts.values():
        assert h["reachable"] is True and h["error"] is None and h["version"] == "0.1.0"
        assert isinstance(h["latency_ms"], float)

    # One message to agents on three machines, verbatim (shell syntax and all).
    message = "check $(whoami) `id` 'quoted' \"double\"; done\nsecond line\ttab ünï"
    res = mosaic(env, "send", "loc", "r1", "r2", "--json", "-", input=message)
    assert res.code == 0, res.out + res.err
    results = json.loads(res.out)["results"]
    assert [(r["agent"], r["host"], r["outcome"]) for r in results] == [
        ("loc", "local", "accepted"), ("r1", "h1", "accepted"), ("r2", "h2", "accepted")
    ]
    for name in ("loc", "r1", "r2"):
        wait_until(lambda n=name: recording(rec / f"{n}.jsonl") == [message],  # type: ignore[misc]
                   timeout=15, what=f"{name} received the message once")  # fmt: skip

    screen = ok(env, "capture", "r1").out
    assert "reply #1: check $(whoami)" in screen
    wait_until(lambda: "reply #1" in ok(env, "logs", "r2", "-n", "20").out, timeout=10,
               what="r2's transcript through the host")  # fmt: skip

    # restart one remote agent: only it gets a new pid.
    before = rows(env)
    out = ok(env, "restart", "r2").out
    assert "[h2]" in out
    after = wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=30,
                       what="running after restart")  # fmt: skip
    assert after["r2"]["pid"] != before["r2"]["pid"]
    assert after["r1"]["pid"] == before["r1"]["pid"]
    assert after["loc"]["pid"] == before["loc"]["pid"]

    stopped = ok(env, "stop").out
    assert "[h1] r1: stopped" in stopped and "[h2] r2: stopped" in stopped
    final = rows(env)
    assert {n: r["state"] for n, r in final.items()} == {n: "stopped" for n in final}
    assert h1.agent_sessions() == []


def test_a_controller_of_remote_agents_alone_runs_the_watcher_that_serves_status(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """The whole fleet's `start` starts this machine's watcher though no agent is local, and
    it answers `status --json` (asking the hosts over the same control masters) exactly as
    the command would itself; `stop` stops it, and then the command answers again."""
    h1, h2 = lab.add("h1"), lab.add("h2")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1"), ("r2", "h2")]))
    started = ok(env, "start").out
    assert "watcher: started" in started and "[h1] r1: started" in started
    wait_until(lambda: all_running(env, ["r1", "r2"]), timeout=30, what="every agent running")
    wait_until(lambda: served(env), timeout=30, interval=0.2, what="the watcher serving")
    answered = same_every_way(env, "status", "--json", served=True)
    doc = answered.doc()
    assert doc["watcher"]["state"] == "running"
    assert [(a["name"], a["host"], a["state"]) for a in doc["agents"]] == [
        ("r1", "h1", "running"), ("r2", "h2", "running")
    ]  # fmt: skip
    assert [h["name"] for h in doc["hosts"]] == ["h1", "h2"]
    # Nothing is kept between answers: a remote agent stopped is stopped at once.
    ok(env, "stop", "r2")
    after = run(env, ["fleet", "status", "--json"])
    assert after.served and after.agent("r2")["state"] == "stopped"
    assert h1.agent_sessions() == ["r1"] and h2.agent_sessions() == []

    stopped = ok(env, "stop").out
    assert "watcher: stopped" in stopped and "[h1] r1: stopped" in stopped
    down = run(env, ["fleet", "status", "--json"])
    assert not down.served and down.doc()["watcher"]["state"] == "stopped"
    assert {a["state"] for a in down.doc()["agents"]} == {"stopped"}


def test_a_controller_that_cannot_run_the_watcher_says_so_and_goes_on(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """The watcher of a controller of remote agents alone is not what `start` is for: where
    tmux cannot run here, the hosts are still started and stopped (here: the host refuses,
    so the exit status is that host's), and the line says why."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    env = {**fleet_env, "TMUX_TMPDIR": str(not_a_dir)}
    write_roster(env, "version: 1\nhosts:\n  h1: {ssh: nobody@127.0.0.1, port: 1}\n"
                 "agents:\n  - {name: r1, runtime: shell, host: h1}\n")  # fmt: skip
    for action, done in (("start", "started"), ("stop", "stopped")):
        res = mosaic(env, action)
        assert res.code == 1, res.out + res.err
        assert res.out.startswith(f"watcher: not {done} on this machine: tmux ")
        assert "Not a directory" in res.out and "Traceback" not in res.err
        assert "host h1 unreachable" in res.err


def test_a_host_without_mosaic_is_named_with_what_to_install(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    lab.add("h1", mosaic=False)
    env = lab.env(fleet_env)
    rec = tmp_path / "rec"
    rec.mkdir()
    write_roster(env, lab.demo_roster(rec, [("r1", "h1")]))
    res: Result = mosaic(env, "start", "r1")
    assert res.code == 1
    assert "host h1: mosaic is not installed there" in res.err
    assert "pip install 'mosaic-fleet==0.1.*'" in res.err
    assert "Traceback" not in res.err
    doc = status_doc(env)
    [h1] = [h for h in doc["hosts"] if h["name"] == "h1"]
    assert h1["reachable"] is True and "not installed" in h1["error"]
    [r1] = [a for a in doc["agents"] if a["name"] == "r1"]
    assert r1["state"] == "unknown" and "not installed" in r1["reason"]
    assert os.path.exists(lab.dir)
