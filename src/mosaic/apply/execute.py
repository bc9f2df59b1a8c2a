"""Carrying out the apply plan (`plan.py`) against the running fleet, under the restart lock.

The plan is computed again once the lock is held, so an `apply` that waited behind a
`restart` (or another `apply`) acts on what that one left, not on what it saw before. Work
goes in this order, each agent reported as progress to waiters on the lock:

1. agents that left the roster: stopped, their records forgotten (and their queued outbox
   messages failed, `on_left_roster`);
2. systemd only: unit files that lag the roster are written, our drop-ins of agents that
   left are removed and their units disabled, the manager reloaded — only when some file
   changed, and only those files (`supervise.systemd.install` plans per file);
3. agents whose settings changed: stopped and started again;
4. agents that do not run: started.

Unchanged agents are never stopped, signalled or typed into. Every agent to (re)start is
checked first (`preflight`), so a missing workdir or program changes nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mosaic import supervise
from mosaic.agents import state
from mosaic.agents.launch import preflight
from mosaic.agents.settings import effective
from mosaic.agents.state import AgentState
from mosaic.agents.teardown import kill_session, kill_tree
from mosaic.apply.plan import Action, Observed, Plan, Step, UnitChange, compute
from mosaic.config.eventtypes import EventType
from mosaic.config.roster import Supervisor
from mosaic.config.runtimes import UNKNOWN, Runtime
from mosaic.errors import MosaicError
from mosaic.fleet import Fleet
from mosaic.store import events
from mosaic.tmux.panes import list_panes

if TYPE_CHECKING:
    from mosaic.supervise.systemd.install import InstallPlan

# Agents stopped or started at once; as for `stop`, bounded so a large fleet does not fork
# hundreds of tmux and systemctl clients together.
WORKERS = 16


@dataclass(frozen=True)
class Prepared:
    plan: Plan
    records: dict[str, AgentState]
    # systemd only: the unit files to write/remove, None when none lag.
    units: InstallPlan | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one step of the plan."""

    agent: str
    ok: bool
    lines: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Report:
    plan: Plan
    outcomes: dict[str, Outcome]  # by agent; empty for a dry run
    unit_lines: tuple[str, ...] = ()
    unit_error: str | None = None

    @property
    def failed(self) -> bool:
        return self.unit_error is not None or any(not o.ok for o in self.outcomes.values())

    def to_doc(self, dry_run: bool, supervisor: str) -> dict[str, Any]:
        """`apply --json`: the plan, and for a real run what became of each step (the
        document a controller merges from every machine, docs/hosts.md)."""
        doc: dict[str, Any] = {"dry_run": dry_run, "supervisor": supervisor,
                               **self.plan.to_doc()}  # fmt: skip
        for row in doc["agents"]:
            outcome = self.outcomes.get(row["name"])
            row["result"] = None if outcome is None else ("ok" if outcome.ok else "failed")
            row["error"] = None if outcome is None else outcome.error
            # What the supervisor did, e.g. "stopped", "started (pid 4242)".
            row["done"] = [] if outcome is None else [
                line.removeprefix(f"{row['name']}: ") for line in outcome.lines
            ]  # fmt: skip
        doc["units_error"] = self.unit_error
        doc["ok"] = not self.failed
        return doc


def prepare(fleet: Fleet) -> Prepared:
    """The plan for the fleet as it is now; reads only (the database, tmux, unit files)."""
    records = state.read_all(fleet.paths)
    panes = list_panes(fleet.tmux) or {}
    installed: frozenset[str] = frozenset()
    unit_plan = None
    changes: tuple[UnitChange, ...] = ()
    if fleet.supervisor is Supervisor.SYSTEMD:
        unit_plan, installed = _unit_work(fleet)
        changes = unit_changes(unit_plan) if unit_plan is not None else ()
    observed = Observed(
        running=frozenset(name for name, pane in panes.items() if not pane.dead),
        sessions=frozenset(panes),
        installed=installed,
    )
    wanted = {a.name: effective(fleet.roster, a) for a in fleet.roster.agents}
    return Prepared(compute(wanted, records, observed, changes), records, unit_plan)


def _unit_work(fleet: Fleet) -> tuple[InstallPlan | None, frozenset[str]]:
    """The part of `install` that lags the roster, and the agents our unit files name.

    New agents' units are enabled only when the fleet was installed enabled (the holder
    is), so apply never turns on start-at-login that `install --no-enable` left off."""
    from mosaic.supervise.systemd import install, units

    ctx = units.UnitContext.from_environment(fleet.paths, fleet.roster, fleet.env)
    installed = install.scan_installed(units.user_unit_dir(fleet.env))
    enabled = units.HOLDER_UNIT in installed.enabled
    full = install.compute_install_plan(ctx, fleet.roster, installed, enable=enabled)
    # Agents that left are stopped (and so their units) before this runs.
    work = replace(
        full, stop=(), enable=tuple(u for u in full.enable if u not in installed.enabled)
    )
    if not (work.changed_files or work.remove_files or work.disable or work.enable):
        return None, installed.agents
    return work, installed.agents


def unit_changes(work: InstallPlan) -> tuple[UnitChange, ...]:
    changes = [UnitChange(str(c.path), c.action) for c in work.changed_files]
    changes += [UnitChange(str(p), "remove") for p in work.remove_files]
    changes += [UnitChange(u, "disable") for u in work.disable]
    changes += [UnitChange(u, "enable") for u in work.enable]
    return tuple(changes)


def apply(fleet: Fleet) -> Report:
    """Plan again under the restart lock, then carry the plan out (see module doc)."""
    from mosaic.supervise.restartlock import restart_lock

    if fleet.supervisor is Supervisor.SYSTEMD:
        from mosaic.supervise.systemd.supervisor import require_manager

        require_manager(fleet)
    with restart_lock(fleet.paths.restart_lock) as held:
        prepared = prepare(fleet)
        return execute(fleet, prepared, held.progress)


def execute(fleet: Fleet, prepared: Prepared, progress: Callable[[], None]) -> Report:
    plan = prepared.plan
    starting = [fleet.roster.agent(s.agent) for s in plan.of(Action.RESTART)]
    starting += [fleet.roster.agent(s.agent) for s in plan.of(Action.START)]
    if starting:
        preflight(fleet.roster, starting)  # nothing is done when one of them cannot start
    outcomes = _each(plan.of(Action.STOP), lambda s: _stop_left(fleet, s, prepared.records),
                     progress)  # fmt: skip
    # Agents that left without ever running (nothing to stop) may have messages waiting too.
    from mosaic import outbox

    outbox.fail_absent(fleet.paths, fleet.roster.names)
    unit_lines: list[str] = []
    unit_error = None
    if prepared.units is not None:
        from mosaic.supervise.systemd import install

        try:
            unit_lines = install.apply(prepared.units, env=fleet.env)
        except MosaicError as exc:
            unit_error = exc.message
        progress()
    if unit_error is not None:
        # Started now, an agent would run under units that lag its recorded settings.
        skipped = "not done: the systemd units could not be updated"
        for step in plan.of(Action.RESTART) + plan.of(Action.START):
            outcomes[step.agent] = Outcome(step.agent, False, error=skipped)
        return Report(plan, outcomes, tuple(unit_lines), unit_error)
    outcomes.update(_each(plan.of(Action.RESTART), lambda s: _restart(fleet, s), progress))
    outcomes.update(_each(plan.of(Action.START), lambda s: _start(fleet, s), progress))
    return Report(plan, outcomes, tuple(unit_lines), unit_error)


def _each(
    steps: list[Step], action: Callable[[Step], list[str]], progress: Callable[[], None]
) -> dict[str, Outcome]:
    """Each agent's part in parallel (agents are independent, and a large fleet must not
    take N stop timeouts in a row); progress is reported as each one finishes, and a
    failure is reported without stopping the others."""

    def attempt(step: Step) -> Outcome:
        try:
            return Outcome(step.agent, True, tuple(action(step)))
        except MosaicError as exc:
            return Outcome(step.agent, False, error=exc.message)

    outcomes: dict[str, Outcome] = {}
    if not steps:
        return outcomes
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(steps))) as pool:
        for done in as_completed([pool.submit(attempt, step) for step in steps]):
            outcome = done.result()
            outcomes[outcome.agent] = outcome
            progress()
    return outcomes


def _start(fleet: Fleet, step: Step) -> list[str]:
    return supervise.start(fleet, [fleet.roster.agent(step.agent)])


def _restart(fleet: Fleet, step: Step) -> list[str]:
    agent = fleet.roster.agent(step.agent)
    return supervise.stop(fleet, [agent], whole=False) + supervise.start(fleet, [agent])


def _stop_left(fleet: Fleet, step: Step, records: dict[str, AgentState]) -> list[str]:
    """Stop an agent the roster no longer names, however it runs, then forget it.

    The supervisors' own `stop` takes roster agents; this one needs only the name. The
    runtime's quit keys are used when its runtime still exists, plain signals otherwise.
    """
    name = step.agent
    record = records.get(name)
    runtime = _runtime_of(fleet, record)
    lines = []
    if fleet.supervisor is Supervisor.SYSTEMD:
        from mosaic.supervise.systemd import install, systemctl, units

        unit = units.agent_unit(name)
        if install.active_units([unit], env=fleet.env):
            systemctl.stop([unit], env=fleet.env)  # its ExecStop ends the pane's tree
            lines.append(f"{name}: stopped {unit}")
    # Disarmed first, so neither the pane-died hook nor a unit restarts it meanwhile.
    state.update(fleet.paths, name, state.disarmed)
    pane = (list_panes(fleet.tmux) or {}).get(name)
    if pane is not None:
        kill_tree(fleet.tmux, pane, runtime)
        kill_session(fleet.tmux, name)
        lines.append(f"{name}: stopped" if not pane.dead else f"{name}: session removed")
    if lines:
        events.record(fleet.paths.db, [events.draft(name, EventType.STOPPED)])
    state.forget(fleet.paths, name)
    on_left_roster(fleet, [name])
    return lines or [f"{name}: not running"]


def _runtime_of(fleet: Fleet, record: AgentState | None) -> Runtime:
    if record is None or record.settings is None:
        return UNKNOWN
    return fleet.roster.runtimes.get(record.settings.runtime, UNKNOWN)


def on_left_roster(fleet: Fleet, names: list[str]) -> None:
    """The outbox's messages still waiting for agents that left the roster become `failed`
    with a reason (and a `delivery_failed` event each), never silently dropped."""
    from mosaic import outbox

    outbox.fail_left(fleet.paths, names)
