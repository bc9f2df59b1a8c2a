"""`apply` of a fleet on several machines: every host gets its part of the roster and applies
it itself, the plans are merged (each step carries `host`), an agent moved between hosts is
stopped on the old one and started on the new one, a dry run changes nothing anywhere, a
second apply has nothing to do, and an unreachable host is named while the rest applies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetkit import mosaic, ok, write_roster
from helpers import wait_until
from hostlab import Lab, all_running, open_lab, rows
from mosaic.config.load import loads
from mosaic.hosts.applying import Result, merge

Doc = dict[str, Any]


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


# --- pure: the merged plan ------------------------------------------------------------------

MERGE_ROSTER = """\
version: 1
hosts:
  h1: {ssh: h1}
  h2: {ssh: h2}
  h3: {ssh: h3}
agents:
  - {name: loc, runtime: shell}
  - {name: mv, runtime: shell, host: h2}
  - {name: far, runtime: shell, host: h3}
"""


def _plan(*rows: tuple[str, str, list[str]], ok: bool = True) -> Doc:
    return {"dry_run": False, "supervisor": "tmux", "units": [], "units_error": None, "ok": ok,
            "changes": sum(a != "unchanged" for _, a, _ in rows),
            "agents": [{"name": n, "action": a, "reasons": r, "result": None, "error": None,
                        "done": []} for n, a, r in rows]}  # fmt: skip


def test_the_merged_plan_names_hosts_moves_and_machines_that_could_not_plan() -> None:
    roster = loads(MERGE_ROSTER, Path("/r/roster.yaml"))
    doc = merge(roster, [
        Result("local", _plan(("loc", "unchanged", []))),
        Result("h1", _plan(("mv", "stop", ["left the roster"]), ("old", "stop",
                                                                   ["left the roster"]))),
        Result("h2", _plan(("mv", "start", ["not running"]))),
        Result("h3", None, "unreachable: Connection refused", reachable=False),
    ], dry_run=False)  # fmt: skip
    steps = {(a["name"], a["host"]): (a["action"], a["reasons"]) for a in doc["agents"]}
    assert steps == {
        ("loc", "local"): ("unchanged", []),
        ("mv", "h1"): ("stop", ["moved to h2"]),
        ("old", "h1"): ("stop", ["left the roster"]),
        ("mv", "h2"): ("start", ["not running", "moved from h1"]),
        ("far", "h3"): ("unknown", ["unreachable: Connection refused"]),
    }
    assert all(list(a)[:3] == ["name", "host", "action"] for a in doc["agents"])
    assert doc["changes"] == 3 and doc["ok"] is False and doc["supervisor"] == "tmux"
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert hosts["h3"]["reachable"] is False and hosts["h3"]["error"].startswith("unreachable")
    assert hosts["h1"]["ok"] is True and hosts["h1"]["changes"] == 2


# --- the lab --------------------------------------------------------------------------------


def _roster(lab: Lab, rec: Path, agents: list[tuple[str, str | None, str]]) -> str:
    """Demo agents (name, host, MARK in their env)."""
    body = "version: 1\n" + lab.hosts_yaml("h1", "h2") + "agents:\n"
    for name, host, mark in agents:
        args = json.dumps(["--think", "0", "--record", str(rec / f"{name}.jsonl")])
        body += f"  - name: {name}\n    runtime: demo\n    args: {args}\n"
        body += f"    env: {{MARK: {mark}}}\n" + (f"    host: {host}\n" if host else "")
    return body


def _apply(env: dict[str, str], *flags: str, code: int = 0) -> Doc:
    res = mosaic(env, "apply", "--json", *flags, timeout=60)
    assert res.code == code, res.out + res.err
    doc: Doc = json.loads(res.out)
    return doc


def _steps(doc: Doc) -> dict[tuple[str, str], tuple[str, list[str]]]:
    return {(a["name"], a["host"]): (a["action"], a["reasons"]) for a in doc["agents"]}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_apply_across_hosts_restarts_only_what_changed_and_moves_an_agent(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1, h2 = lab.add("h1"), lab.add("h2")
    env = lab.env(fleet_env)
    names = ["loc", "r1", "r2", "mv"]
    write_roster(env, _roster(lab, tmp_path, [("loc", None, "one"), ("r1", "h1", "one"),
                                              ("r2", "h2", "one"), ("mv", "h1", "one")]))
    ok(env, "start")
    before = wait_until(lambda: all_running(env, names), timeout=40, what="running")
    assert _apply(env)["changes"] == 0  # what `start` started is what the roster says

    # r1's env changes; mv moves from h1 to h2.
    write_roster(env, _roster(lab, tmp_path, [("loc", None, "one"), ("r1", "h1", "two"),
                                              ("r2", "h2", "one"), ("mv", "h2", "one")]))
    parts = {h.name: (h.home / "fleet" / "roster.yaml").read_bytes() for h in (h1, h2)}
    plan = _apply(env, "--dry-run")
    expected = {
        ("loc", "local"): ("unchanged", []),
        ("r1", "h1"): ("restart", ["env MARK changed"]),
        ("mv", "h1"): ("stop", ["moved to h2"]),
        ("r2", "h2"): ("unchanged", []),
        ("mv", "h2"): ("start", ["not running", "moved from h1"]),
    }
    assert _steps(plan) == expected
    assert plan["dry_run"] is True and plan["changes"] == 3
    assert [h["name"] for h in plan["hosts"]] == ["local", "h1", "h2"]
    # Nothing changed anywhere: same processes, same sessions, the hosts' rosters untouched.
    now = rows(env)
    assert {n: now[n]["pid"] for n in names if n != "mv"} == {
        n: before[n]["pid"] for n in names if n != "mv"
    }  # fmt: skip
    # (status already places mv on h2, whose roster lacks it: "stopped" until applied)
    assert now["mv"]["host"] == "h2" and now["mv"]["state"] == "stopped"
    assert int(h1.tmux("list-panes", "-t", "=mv", "-F", "#{pane_pid}")) == before["mv"]["pid"]
    assert h1.agent_sessions() == ["mv", "r1"] and h2.agent_sessions() == ["r2"]
    assert {h.name: (h.home / "fleet" / "roster.yaml").read_bytes() for h in (h1, h2)} == parts
    table = ok(env, "apply", "--dry-run").out
    assert "moved to h2" in table and "h1" in table and "dry run" in table

    done = _apply(env)
    assert _steps(done) == expected
    assert done["ok"] is True and done["dry_run"] is False
    results = {(a["name"], a["host"]): a["result"] for a in done["agents"]}
    assert results[("r1", "h1")] == results[("mv", "h2")] == results[("mv", "h1")] == "ok"
    after = wait_until(lambda: all_running(env, names), timeout=40, what="running again")
    assert after["loc"]["pid"] == before["loc"]["pid"]
    assert after["r2"]["pid"] == before["r2"]["pid"]
    assert after["r1"]["pid"] != before["r1"]["pid"]
    assert _environ(after["r1"]["pid"])["MARK"] == "two"
    assert after["mv"]["host"] == "h2"
    assert h1.agent_sessions() == ["r1"] and h2.agent_sessions() == ["mv", "r2"]

    again = _apply(env)
    assert again["changes"] == 0
    assert {a["action"] for a in again["agents"]} == {"unchanged"}
    assert "nothing to do" in ok(env, "apply").out
    ok(env, "stop")


def test_an_unreachable_host_is_named_and_the_others_apply(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1, _ = lab.add("h1"), lab.add("h2")
    env = lab.env(fleet_env)
    agents = [("loc", None, "one"), ("r1", "h1", "one"), ("r2", "h2", "one")]
    write_roster(env, _roster(lab, tmp_path, agents))
    ok(env, "start")
    before = wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=40,
                        what="running")  # fmt: skip
    write_roster(env, _roster(lab, tmp_path, [(n, h, "two") for n, h, _ in agents]))
    h1.kill_sshd()
    res = mosaic(env, "apply", "--json", timeout=60)
    assert res.code == 1, res.out + res.err
    assert "host h1 unreachable" in res.err and "Traceback" not in res.err
    doc = json.loads(res.out)
    assert _steps(doc)[("r1", "h1")][0] == "unknown"
    assert _steps(doc)[("r2", "h2")] == ("restart", ["env MARK changed"])
    assert _steps(doc)[("loc", "local")] == ("restart", ["env MARK changed"])
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert hosts["h1"]["reachable"] is False and "Connection refused" in hosts["h1"]["error"]
    assert hosts["h2"]["ok"] is True and doc["ok"] is False
    after = wait_until(lambda: {n: r for n, r in rows(env).items() if n != "r1"}
                       if all_running(env, ["loc", "r2"]) else None, timeout=40,
                       what="the others restarted")  # fmt: skip
    assert after["r2"]["pid"] != before["r2"]["pid"]
    assert after["loc"]["pid"] != before["loc"]["pid"]
    # h1 still runs r1 as it was (nothing reached it), and applies once it answers.
    assert int(h1.tmux("list-panes", "-t", "=r1", "-F", "#{pane_pid}")) == before["r1"]["pid"]
    h1.start_sshd()
    doc = _apply(env)
    assert _steps(doc)[("r1", "h1")] == ("restart", ["env MARK changed"])
    assert {a["action"] for a in doc["agents"] if a["name"] != "r1"} == {"unchanged"}
    ok(env, "stop")
