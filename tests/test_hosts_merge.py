"""The pure parts of hosts: splitting agents by machine, merging answers, reading failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mosaic.config.roster import Agent, Host, Roster
from mosaic.errors import ExitCode, OperationFailed
from mosaic.hosts import merge, route, sending, version
from mosaic.hosts.remote import HostError, Remote, parse_json
from mosaic.hosts.ssh import Link
from mosaic.send.outcome import Outcome

H1, H2 = Host("h1", "dev@h1"), Host("h2", "dev@h2")


def roster(*agents: Agent, hosts: tuple[Host, ...] = (H1, H2)) -> Roster:
    return Roster(path=Path("/r.yaml"), agents=agents, hosts=hosts)


LOC, A1, A2 = Agent("loc", "shell"), Agent("a1", "shell", host="h1"), Agent("a2", "demo", host="h2")


def test_split_groups_by_machine_local_first_then_roster_order() -> None:
    r = roster(A2, LOC, A1)
    parts = route.split(r, list(r.agents))
    assert [(p.name, p.names) for p in parts] == [("local", ["loc"]), ("h1", ["a1"]),
                                                  ("h2", ["a2"])]  # fmt: skip


def test_split_leaves_out_machines_nothing_runs_on_unless_every_host() -> None:
    r = roster(A1)
    assert [p.name for p in route.split(r, [A1])] == ["h1"]
    assert [(p.name, p.names) for p in route.split(r, [A1], every_host=True)] == [
        ("h1", ["a1"]), ("h2", [])
    ]  # fmt: skip
    # Without hosts the fleet is this machine, even an empty one.
    assert [p.name for p in route.split(roster(hosts=()), [])] == ["local"]


def test_worst_exit_code_ranks_config_over_failure_over_not_accepted() -> None:
    assert route.worst([]) == 0
    assert route.worst([0, 3]) == 3
    assert route.worst([3, 1, 0]) == 1
    assert route.worst([1, 2]) == 2
    assert route.worst([0, 78]) == 1  # anything unexpected is a failure


def _done(part: route.Part, value: Any = None, error: Exception | None = None) -> Any:
    return route.Done(part, value, error, 0.25)  # type: ignore[arg-type]


def _remote_doc(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"supervisor": "tmux", "socket": "s", "holder": "running", "version": "0.1.3",
            "agents": list(rows), "hosts": [{"name": "local"}]}  # fmt: skip


def test_status_merge_marks_an_unreachable_hosts_agents_unknown_and_keeps_the_rest() -> None:
    local_doc = {"supervisor": "tmux", "socket": "mine", "holder": "running",
                 "agents": [{"name": "loc", "state": "running", "pid": 7}]}  # fmt: skip
    down = HostError("h2", "host h2 unreachable: Connection refused", reachable=False)
    a1_row = {"name": "a1", "state": "running", "pid": 9, "host": "local"}
    done = [
        _done(route.Part(None, (LOC,)), local_doc),
        _done(route.Part(H1, (A1,)), _remote_doc(a1_row)),
        _done(route.Part(H2, (A2,)), error=down),
    ]
    doc = merge.status([LOC, A1, A2], done, {"holder": "unused"})
    assert (doc["socket"], doc["holder"]) == ("mine", "running")
    assert [(a["name"], a["host"], a["state"], a["pid"]) for a in doc["agents"]] == [
        ("loc", "local", "running", 7), ("a1", "h1", "running", 9), ("a2", "h2", "unknown", None)
    ]  # fmt: skip
    assert doc["agents"][2]["reason"] == "unreachable: Connection refused"
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert hosts["h1"] == {"name": "h1", "reachable": True, "latency_ms": 250.0,
                           "version": "0.1.3", "error": None, "supervisor": "tmux",
                           "socket": "s", "holder": "running"}  # fmt: skip
    assert hosts["h2"]["reachable"] is False and hosts["h2"]["latency_ms"] is None
    assert hosts["local"]["version"] == "0.1.0"


def test_status_merge_reports_a_host_that_answered_with_an_error_as_reachable() -> None:
    broken = HostError("h1", "host h1: mosaic is not installed there")
    doc = merge.status([A1], [_done(route.Part(H1, (A1,)), error=broken)],
                       {"supervisor": "tmux", "socket": "x", "holder": "stopped"})  # fmt: skip
    assert doc["holder"] == "stopped"
    [h1] = doc["hosts"]
    assert h1["reachable"] is True and h1["error"] == "mosaic is not installed there"
    assert doc["agents"][0]["state"] == "unknown"


def test_an_agent_missing_from_its_hosts_roster_is_stopped_with_a_reason() -> None:
    doc = merge.status([A1], [_done(route.Part(H1, (A1,)), _remote_doc())], {})
    [row] = doc["agents"]
    assert (row["state"], row["pid"], row["restarts"]) == ("stopped", None, None)
    assert "not in the roster on h1" in row["reason"]


def test_send_results_keep_the_order_given_and_fill_gaps() -> None:
    doc = {"results": [
        {"agent": "b", "outcome": "not_accepted", "accepted": False, "attempts": 3,
         "seconds": 1.5, "evidence": ["demo> hi"]},
        {"agent": "a", "outcome": "accepted", "accepted": True, "attempts": 1,
         "seconds": 0.2, "evidence": []},
        {"agent": "junk", "outcome": "no-such-outcome"},
    ]}  # fmt: skip
    a, b, c = sending.send_results("h1", ["a", "b", "c"], doc)
    assert (a.agent, a.outcome, a.attempts) == ("a", Outcome.ACCEPTED, 1)
    assert (b.outcome, b.evidence) == (Outcome.NOT_ACCEPTED, ("demo> hi",))
    assert c.outcome is Outcome.NOT_RUNNING and "host h1 gave no result" in c.evidence[0]


def test_parse_json_skips_what_a_login_script_printed_first() -> None:
    assert parse_json("h", b'{"a": 1}\n') == {"a": 1}
    assert parse_json("h", b'Welcome to h!\n{"a": 1}\n') == {"a": 1}
    with pytest.raises(HostError, match="host h: expected a JSON answer, got 'oops'"):
        parse_json("h", b"oops\n")


def _failure(code: int, err: str) -> HostError:
    return Remote(Link(H1, Path("/nonexistent"))).failure(code, err)


def test_failures_are_read_from_the_exit_status_and_name_the_host() -> None:
    down = _failure(255, "ssh: connect to host h1 port 22: Connection refused\n")
    assert down.message == (
        "host h1 unreachable: ssh: connect to host h1 port 22: Connection refused"
    )
    assert not down.reachable and down.exit_code is ExitCode.FAILED
    missing = _failure(127, "bash: line 1: mosaic: command not found")
    assert missing.reachable and "mosaic is not installed there" in missing.message
    assert "`ssh dev@h1 mosaic --version`" in missing.message
    usage = _failure(2, "unknown agent 'x'; known agents: a1\n")
    assert usage.exit_code is ExitCode.USAGE
    assert usage.message == "host h1: unknown agent 'x'; known agents: a1"
    many = _failure(1, "a1: stop failed: boom\na2: stopped\n")
    assert many.message == "host h1: a1: stop failed: boom\nhost h1: a2: stopped"
    assert _failure(3, "").exit_code is ExitCode.NOT_ACCEPTED
    assert _failure(99, "").exit_code is ExitCode.FAILED


def test_raise_failures_names_every_failed_machine_with_the_worst_code() -> None:
    ok = _done(route.Part(None, ()), ["fine"])
    one = _done(route.Part(H1, ()), error=HostError("h1", "host h1: boom", ExitCode.FAILED))
    two = _done(route.Part(H2, ()), error=HostError("h2", "host h2: bad roster", ExitCode.USAGE))
    route.raise_failures([ok])
    with pytest.raises(HostError, match="host h1: boom"):
        route.raise_failures([ok, one])
    with pytest.raises(route.PartsFailed) as info:
        route.raise_failures([one, ok, two])
    assert info.value.message == "host h1: boom\nhost h2: bad roster"
    assert info.value.exit_code is ExitCode.USAGE
    local = _done(route.Part(None, ()), error=OperationFailed("tmux went away"))
    with pytest.raises(OperationFailed):
        route.raise_failures([local])


@pytest.mark.parametrize(
    ("controller", "here", "expected"),
    [("0.1.0", "0.1.0", True), ("0.1.9", "0.1.0", True), ("0.2.0", "0.1.0", False),
     ("1.1.0", "0.1.0", False), ("garbage", "0.1.0", False)],
)  # fmt: skip
def test_compatible_releases_share_major_and_minor(
    controller: str, here: str, expected: bool
) -> None:
    assert version.compatible(controller, here) is expected


def test_parallelism_is_bounded_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(route.PARALLEL_ENV, raising=False)
    assert route.parallelism() == route.DEFAULT_PARALLEL
    monkeypatch.setenv(route.PARALLEL_ENV, "4")
    assert route.parallelism() == 4
    monkeypatch.setenv(route.PARALLEL_ENV, "0")
    with pytest.raises(Exception, match="MOSAIC_FLEET_HOSTS_PARALLEL must be a whole number"):
        route.parallelism()
