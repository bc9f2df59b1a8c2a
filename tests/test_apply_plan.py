"""The apply planner on its own: real rosters through the real loader, records and "what
runs" as values; no tmux. One test per kind of change, plus the rules around them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mosaic.agents import state
from mosaic.agents.settings import NOT_RECORDED, Settings, effective
from mosaic.agents.state import AgentState, Desired
from mosaic.apply.plan import Action, Observed, Plan, Step, compute
from mosaic.config.load import loads
from mosaic.config.names import WATCHER_SESSION
from mosaic.config.paths import Paths
from mosaic.config.roster import Roster

BASE = """\
version: 1
defaults:
  env: {EDITOR: vi}
agents:
  - name: a1
    runtime: shell
    args: ["-i"]
    env: {TOKEN: s3cret-value}
  - name: a2
    runtime: demo
runtimes:
  pyrepl:
    command: ["python3", "-q", "-i"]
    processes: ["python3"]
"""


def roster(tmp_path: Path, text: str) -> Roster:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "other").mkdir(exist_ok=True)
    return loads(text, tmp_path / "roster.yaml", env={"HOME": str(tmp_path)})


def wanted(r: Roster) -> dict[str, Settings]:
    return {a.name: effective(r, a) for a in r.agents}


def running_with(r: Roster) -> tuple[dict[str, AgentState], Observed]:
    """Every agent of `r` started with `r`'s settings and running now."""
    records = {
        a.name: AgentState(desired=Desired.RUNNING, generation=1, settings=effective(r, a))
        for a in r.agents
    }
    names = frozenset(r.names)
    return records, Observed(running=names, sessions=names)


def plan_after_edit(tmp_path: Path, before: str, after: str) -> Plan:
    records, observed = running_with(roster(tmp_path, before))
    return compute(wanted(roster(tmp_path, after)), records, observed)


def changed(plan: Plan) -> list[Step]:
    return plan.changes


def test_nothing_changed_is_an_empty_plan(tmp_path: Path) -> None:
    plan = plan_after_edit(tmp_path, BASE, BASE)
    assert plan.empty
    assert [(s.agent, s.action) for s in plan.steps] == [
        ("a1", Action.UNCHANGED), ("a2", Action.UNCHANGED),
    ]  # fmt: skip


def test_env_value_changed(tmp_path: Path) -> None:
    plan = plan_after_edit(tmp_path, BASE, BASE.replace("s3cret-value", "n3w-value"))
    assert changed(plan) == [Step("a1", Action.RESTART, ("env TOKEN changed",))]
    # The reason names the key, never a value, old or new.
    doc = repr(plan.to_doc())
    assert "s3cret" not in doc and "n3w" not in doc


def test_env_from_defaults_added_and_removed(tmp_path: Path) -> None:
    after = BASE.replace("env: {EDITOR: vi}", "env: {PAGER: less}")
    plan = plan_after_edit(tmp_path, BASE, after)
    reasons = ("env EDITOR removed", "env PAGER added")
    assert changed(plan) == [
        Step("a1", Action.RESTART, reasons), Step("a2", Action.RESTART, reasons),
    ]  # fmt: skip


def test_env_key_order_is_not_a_change(tmp_path: Path) -> None:
    before = BASE.replace("{TOKEN: s3cret-value}", "{TOKEN: x, ZED: y}")
    after = BASE.replace("{TOKEN: s3cret-value}", "{ZED: y, TOKEN: x}")
    assert plan_after_edit(tmp_path, before, after).empty


def test_args_changed(tmp_path: Path) -> None:
    plan = plan_after_edit(tmp_path, BASE, BASE.replace('["-i"]', '["-i", "--norc"]'))
    assert changed(plan) == [Step("a1", Action.RESTART, ("args changed",))]


def test_runtime_changed(tmp_path: Path) -> None:
    plan = plan_after_edit(tmp_path, BASE, BASE.replace("runtime: demo", "runtime: pyrepl"))
    assert changed(plan) == [Step("a2", Action.RESTART, ("runtime demo → pyrepl",))]


def test_custom_runtime_command_changed(tmp_path: Path) -> None:
    before = BASE.replace("runtime: demo", "runtime: pyrepl")
    after = before.replace('["python3", "-q", "-i"]', '["python3", "-i"]')
    plan = plan_after_edit(tmp_path, before, after)
    assert changed(plan) == [Step("a2", Action.RESTART, ("command changed",))]


def test_workdir_changed(tmp_path: Path) -> None:
    before = BASE.replace("    runtime: demo\n", "    runtime: demo\n    workdir: src\n")
    after = before.replace("workdir: src", "workdir: other")
    plan = plan_after_edit(tmp_path, before, after)
    reason = f"workdir {tmp_path / 'src'} → {tmp_path / 'other'}"
    assert changed(plan) == [Step("a2", Action.RESTART, (reason,))]


def test_restart_policy_changed(tmp_path: Path) -> None:
    after = BASE.replace("    runtime: demo\n", "    runtime: demo\n    restart: always\n")
    plan = plan_after_edit(tmp_path, BASE, after)
    assert changed(plan) == [Step("a2", Action.RESTART, ("restart on-failure → always",))]


def test_agent_added(tmp_path: Path) -> None:
    after = BASE.replace("runtimes:", "  - name: a3\n    runtime: shell\nruntimes:")
    plan = plan_after_edit(tmp_path, BASE, after)
    assert changed(plan) == [Step("a3", Action.START, ("not running",))]
    assert [s.agent for s in plan.steps] == ["a1", "a2", "a3"]  # roster order


def test_agent_removed(tmp_path: Path) -> None:
    after = BASE.replace("  - name: a2\n    runtime: demo\n", "")
    plan = plan_after_edit(tmp_path, BASE, after)
    assert changed(plan) == [Step("a2", Action.STOP, ("left the roster",))]


def test_agent_renamed_is_removed_plus_added(tmp_path: Path) -> None:
    plan = plan_after_edit(tmp_path, BASE, BASE.replace("name: a2", "name: b2"))
    assert changed(plan) == [
        Step("b2", Action.START, ("not running",)),
        Step("a2", Action.STOP, ("left the roster",)),
    ]  # fmt: skip


def test_several_changes_give_one_reason_each(tmp_path: Path) -> None:
    after = BASE.replace('["-i"]', '["-l"]').replace("s3cret-value", "x")
    after = after.replace("    runtime: shell\n", "    runtime: shell\n    restart: never\n")
    plan = plan_after_edit(tmp_path, BASE, after)
    assert changed(plan) == [
        Step("a1", Action.RESTART,
             ("args changed", "env TOKEN changed", "restart on-failure → never")),
    ]  # fmt: skip


def test_stopped_and_failed_agents_are_started(tmp_path: Path) -> None:
    r = roster(tmp_path, BASE)
    records, _ = running_with(r)
    records["a1"] = state.disarmed(records["a1"])
    records["a2"] = replace(records["a2"], failed=True)
    plan = compute(wanted(r), records, Observed(frozenset(), frozenset({"a2"})))
    assert plan.changes == [
        Step("a1", Action.START, ("stopped",)),
        Step("a2", Action.START, ("failed (gave up after repeated crashes)",)),
    ]  # fmt: skip


def test_running_without_recorded_settings_is_restarted(tmp_path: Path) -> None:
    r = roster(tmp_path, BASE)
    records, observed = running_with(r)
    records["a2"] = replace(records["a2"], settings=None)
    plan = compute(wanted(r), records, observed)
    assert plan.changes == [Step("a2", Action.RESTART, (NOT_RECORDED,))]


def test_what_left_the_roster_is_stopped_only_when_it_is_still_ours(tmp_path: Path) -> None:
    r = roster(tmp_path, BASE)
    records, observed = running_with(r)
    settings = effective(r, r.agent("a1"))
    records.update(
        # stopped earlier, no session left: nothing to do
        gone_quiet=AgentState(desired=Desired.STOPPED, generation=2, settings=settings),
        # a crash left a dead pane; a respawn could revive it
        gone_dead=AgentState(desired=Desired.RUNNING, generation=1, settings=settings),
        # wanted running, its session already gone
        gone_armed=AgentState(desired=Desired.RUNNING, generation=1, settings=settings),
    )
    observed = Observed(
        running=observed.running | {"stranger"},
        # "stranger": a session on the socket that mosaic never launched (no record)
        sessions=observed.sessions | {"gone_dead", "stranger"},
        installed=frozenset({"gone_unit"}),  # only its systemd drop-in is left
    )
    plan = compute(wanted(r), records, observed)
    assert [(s.agent, s.action) for s in plan.changes] == [
        ("gone_armed", Action.STOP), ("gone_dead", Action.STOP), ("gone_unit", Action.STOP),
    ]  # fmt: skip


@pytest.mark.parametrize("text", [BASE, BASE.replace("runtime: demo", "runtime: pyrepl")])
def test_settings_survive_the_record_in_the_database(tmp_path: Path, text: str) -> None:
    """What `start` records is what `apply` later reads back: the round trip through the
    fleet database must not turn an unchanged agent into a drifted one."""
    r = roster(tmp_path, text)
    paths = Paths(tmp_path / "home", tmp_path / "roster.yaml")
    for agent in r.agents:
        state.update(paths, agent.name, state.armed(agent, 1.0, effective(r, agent)))
    records = state.read_all(paths)
    assert {n: rec.settings for n, rec in records.items()} == wanted(r)
    names = frozenset(r.names)
    assert compute(wanted(r), records, Observed(names, names)).empty
    state.forget(paths, "a1")
    assert set(state.read_all(paths)) == {"a2"}


def test_a_damaged_settings_record_reads_as_not_recorded() -> None:
    assert Settings.from_doc({"runtime": "shell"}) is None
    assert Settings.from_doc({"runtime": "x", "command": [1], "args": [], "env": {},
                              "workdir": "/", "restart": "always"}) is None  # fmt: skip
    assert Settings.from_doc("nonsense") is None


def test_the_watchers_own_record_is_never_an_agent_that_left(tmp_path: Path) -> None:
    """The watcher keeps a supervision record (and a session) beside the agents', under a
    name no agent can have; apply must not take it for an agent that left the roster."""
    r = roster(tmp_path, BASE)
    records, observed = running_with(r)
    watcher = replace(AgentState(), desired=Desired.RUNNING)
    records = {**records, WATCHER_SESSION: watcher}
    observed = Observed(
        running=observed.running | {WATCHER_SESSION},
        sessions=observed.sessions | {WATCHER_SESSION},
    )
    assert compute(wanted(r), records, observed).empty
