"""The systemd supervisor: start, stop and restart through `systemctl --user`; status view.

systemd owns the lifecycle (it restarts crashed runtimes, bounds crash loops with the start
limit, and stops agents before their holder); this module only asks it, with one
systemctl call per step for the whole selection, and reads back what happened so the
operator gets the same per-agent lines as under the tmux supervisor. The panes themselves
are brought up and torn down by the units (`unitexec`), on the same tmux server and
sessions the tmux supervisor uses, so send/capture/watch/attach/logs need nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mosaic.agents import state
from mosaic.agents.launch import preflight
from mosaic.agents.liveness import AgentRunState, Overlay, runtime_alive
from mosaic.agents.state import Desired
from mosaic.agents.teardown import kill_session, kill_tree
from mosaic.base.fs import ensure_dir
from mosaic.config.roster import Agent, RestartPolicy
from mosaic.config.runtimes import UNKNOWN, Runtime
from mosaic.errors import MosaicError, OperationFailed
from mosaic.fleet import Fleet
from mosaic.supervise import choice
from mosaic.supervise.systemd import systemctl, units
from mosaic.tmux.panes import Pane, int_or_zero, list_panes
from mosaic.tmux.server import kill_server, write_conf

PROPS = ("LoadState", "ActiveState", "SubState", "NRestarts", "MainPID", "Result")


@dataclass(frozen=True)
class UnitInfo:
    """One unit as systemd sees it (the subset `status` and the reports need)."""

    load: str = ""
    active: str = ""
    sub: str = ""
    restarts: int = 0
    main_pid: int = 0
    result: str = ""

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> UnitInfo:
        return cls(
            load=props.get("LoadState", ""),
            active=props.get("ActiveState", ""),
            sub=props.get("SubState", ""),
            restarts=int_or_zero(props.get("NRestarts", "")),
            main_pid=int_or_zero(props.get("MainPID", "")),
            result=props.get("Result", ""),
        )

    @property
    def installed(self) -> bool:
        return self.load not in ("", "not-found")

    @property
    def up(self) -> bool:
        return self.active in units.UP_STATES

@dataclass(frozen=True)
class FleetView:
    holder: UnitInfo
    agents: Mapping[str, UnitInfo]


def require_manager(fleet: Fleet) -> None:
    """Everything here talks to the user manager: say so plainly when it cannot be reached
    (the fleet is never switched to the tmux supervisor behind the operator's back)."""
    choice.require_user_manager(fleet.env, "this fleet runs under the systemd supervisor")


def view(fleet: Fleet, names: Sequence[str]) -> FleetView:
    """Holder and every agent in ONE `systemctl show`: the cost must not grow per agent."""
    agent_units = [units.agent_unit(n) for n in names]
    props = systemctl.show([units.HOLDER_UNIT, *agent_units], PROPS)
    return FleetView(
        holder=UnitInfo.from_props(props[units.HOLDER_UNIT]),
        agents={n: UnitInfo.from_props(props[units.agent_unit(n)]) for n in names},
    )


# --- status (pure) -------------------------------------------------------------------------


def holder_state(info: UnitInfo) -> str:
    return {"active": "running", "activating": "starting", "reloading": "running",
            "failed": "failed"}.get(info.active, "stopped")  # fmt: skip


def unit_state(
    info: UnitInfo, pane: Pane | None, runtime: Runtime, policy: RestartPolicy
) -> AgentRunState:
    """systemd decides failed/starting/stopped; `running` still needs the runtime alive in
    the pane, which only the pane can tell. `failed` means gave up (a crash loop, or a
    unit that cannot start): a `restart: never` agent that exited with an error was not
    to be restarted, so it is stopped, with its exit in `last_exit`, as under tmux."""
    alive = pane is not None and runtime_alive(pane, runtime)
    if info.active == "failed":
        if policy is RestartPolicy.NEVER and info.result in ("exit-code", "signal", "core-dump"):
            return AgentRunState.STOPPED
        return AgentRunState.FAILED
    if info.active == "activating":
        # ExecStart in progress, or waiting out RestartSec after a crash
        return AgentRunState.STARTING
    if info.active in ("active", "reloading"):
        # The unit is up but its runtime is not (yet) in the pane: either launching or just
        # died and the waiter is about to tell systemd.
        return AgentRunState.RUNNING if alive else AgentRunState.STARTING
    return AgentRunState.RUNNING if alive else AgentRunState.STOPPED


# --- start / stop / restart ----------------------------------------------------------------


def _require_installed(current: FleetView) -> None:
    missing = [units.HOLDER_UNIT] if not current.holder.installed else []
    missing += [units.agent_unit(n) for n, i in current.agents.items() if not i.installed]
    if missing:
        raise OperationFailed(
            "the systemd units are not installed (" + ", ".join(missing) + "); "
            "run `mosaic fleet install` first"
        )


def _nothing() -> None:
    pass


def _tracker(
    unit_names: Sequence[str], arrived: Callable[[str], bool], progress: Callable[[], None]
) -> systemctl.Tick:
    """A tick for one long systemctl call over many units (systemd runs their jobs in
    parallel): `progress` each time more of them have arrived, so a restart of a large fleet
    is seen to move while the call lasts."""
    count = 0

    def tick() -> None:
        nonlocal count
        try:
            states = systemctl.is_active(list(unit_names), timeout=systemctl.PROBE_TIMEOUT)
        except OperationFailed:
            return  # a look that failed is no news; the call itself reports real trouble
        now = sum(1 for u in unit_names if arrived(states.get(u, "")))
        if now > count:
            count = now
            progress()

    return tick


def _is_down(active_state: str) -> bool:
    # Not merely "deactivating": that is where a slow ExecStop spends its time.
    return active_state in ("inactive", "failed")


def _is_settled(active_state: str) -> bool:
    return active_state in ("active", "failed")


def start(
    fleet: Fleet, agents: list[Agent], progress: Callable[[], None] = _nothing
) -> list[str]:
    """Start the holder and the agents' units in one systemctl call; idempotent.

    Preflight first, so a bad agent leaves nothing half-started. A unit that gave up after
    a crash loop is reset first: an explicit start is the operator asking again. `progress`
    is called as units come up, and once all are.
    """
    require_manager(fleet)
    preflight(fleet.roster, agents)
    names = [a.name for a in agents]
    before = view(fleet, names)
    _require_installed(before)
    ensure_dir(fleet.paths.run)
    ensure_dir(fleet.paths.logs)
    write_conf(fleet.paths)  # read by the holder's tmux -f when it starts
    failed = [units.agent_unit(n) for n, i in before.agents.items() if i.active == "failed"]
    if before.holder.active == "failed":
        failed.append(units.HOLDER_UNIT)
    # Any start means a fleet to watch: the watcher comes with it, when its unit exists
    # (units installed by an older mosaic lack it until the next `install`).
    watcher = systemctl.show([units.WATCHER_UNIT], PROPS)[units.WATCHER_UNIT]
    watcher_info = UnitInfo.from_props(watcher)
    if watcher_info.active == "failed":
        failed.append(units.WATCHER_UNIT)
    systemctl.reset_failed(failed)
    with_watcher = [units.WATCHER_UNIT] if watcher_info.installed else []
    wanted = [units.HOLDER_UNIT, *(units.agent_unit(n) for n in names), *with_watcher]
    systemctl.start(wanted, tick=_tracker(wanted, _is_settled, progress))
    progress()
    panes = list_panes(fleet.tmux) or {}
    lines = _stale_dropins(fleet)
    for name in names:
        pane = panes.get(name)
        pid = f" (pid {pane.pid})" if pane is not None and not pane.dead else ""
        was = before.agents[name].active == "active"
        lines.append(f"{name}: {'already running' if was else 'started'}{pid}")
    if with_watcher:
        was = watcher_info.active == "active"
        lines.append(f"watcher: {'already running' if was else 'started'}")
    else:
        lines.append(f"note: {units.WATCHER_UNIT} is not installed (no events or "
                     "notifications); run `mosaic fleet install`")  # fmt: skip
    return lines


def _stale_dropins(fleet: Fleet) -> list[str]:
    """A note when the per-agent settings installed differ from the roster (an agent added
    or its `restart:` changed since `install`): the template alone would run it."""
    from mosaic.supervise.systemd import install

    ctx = units.UnitContext.from_environment(fleet.paths, fleet.roster)
    plan = install.plan_install(ctx, fleet.roster)
    stale = sorted(
        c.path.parent.name.removesuffix(".service.d").removeprefix(units.AGENT_PREFIX)
        for c in plan.changed_files
        if c.path.parent.name.endswith(".service.d")
    )
    if not stale:
        return []
    return [
        f"note: installed units lag the roster for {', '.join(stale)}; "
        "run `mosaic fleet install` to apply it"
    ]


def stop(
    fleet: Fleet, agents: list[Agent], whole: bool, progress: Callable[[], None] = _nothing
) -> list[str]:
    """Stop the agents' units (every one, even when some fail) and, for the whole fleet,
    the holder; report every failure at once (exit 1). `progress` is called as units go
    down, and once all have."""
    require_manager(fleet)
    names = [a.name for a in agents]
    if whole:
        names += sorted(set(_loaded_agents()) - set(names))
    before = view(fleet, names)
    stop_error: str | None = None
    agent_units = [units.agent_unit(n) for n in names]
    try:
        systemctl.stop(agent_units, tick=_tracker(agent_units, _is_down, progress))
    except OperationFailed as exc:
        stop_error = exc.message
    progress()
    after = view(fleet, names)
    runtimes = {a.name: fleet.roster.runtime_for(a) for a in agents}
    lines, failures = _stop_leftovers(fleet, names, runtimes)
    report: list[str] = []
    for name in names:
        if name in failures:
            continue
        info = after.agents[name]
        if info.up:
            failures[name] = f"unit still {info.active} ({info.sub})"
        elif name in lines:
            report.append(lines[name])
        else:
            report.append(f"{name}: {'stopped' if before.agents[name].up else 'not running'}")
    # An explicit stop also clears `failed`: the agent is simply stopped now.
    systemctl.reset_failed(
        [units.agent_unit(n) for n in names if n not in failures
         and after.agents[n].active == "failed"]
    )  # fmt: skip
    if whole and not failures:
        report.append(_stop_holder(fleet))
        progress()
    if failures:
        problems = [f"{n}: stop failed: {why}" for n, why in failures.items()]
        if stop_error:
            problems.append(stop_error)
        raise OperationFailed("\n".join(report + problems))
    return report


def _loaded_agents() -> list[str]:
    """Agent units the manager knows but the roster may no longer name (whole-fleet stop)."""
    found = systemctl.list_units([f"{units.AGENT_PREFIX}*.service"])
    return [a for a in (units.agent_of_unit(u) for u in found) if a]


def _stop_leftovers(
    fleet: Fleet, names: list[str], runtimes: Mapping[str, Runtime]
) -> tuple[dict[str, str], dict[str, str]]:
    """Sessions that outlived their unit (started by the tmux supervisor before a switch,
    or a unit whose ExecStop failed) are ended directly, as the tmux supervisor would."""
    lines: dict[str, str] = {}
    failures: dict[str, str] = {}
    panes = list_panes(fleet.tmux) or {}
    for name in names:
        state.update(fleet.paths, name, _disarm)
        pane = panes.get(name)
        if pane is None:
            continue
        try:
            kill_tree(fleet.tmux, pane, runtimes.get(name, UNKNOWN))
            kill_session(fleet.tmux, name)
        except MosaicError as exc:
            failures[name] = exc.message
            continue
        if not pane.dead:
            lines[name] = f"{name}: stopped"
    return lines, failures


def _disarm(s: state.AgentState) -> state.AgentState:
    # The unit's ExecStop has usually disarmed it already: one stop, one new generation.
    return s if s.desired is Desired.STOPPED else state.disarmed(s)


def reset_failed(unit_names: Sequence[str]) -> None:
    """reset-failed only the units that ARE failed: an inactive unit may be unloaded by the
    manager between any look and the call, and systemctl then rejects the whole call."""
    if not unit_names:
        return
    states = systemctl.is_active(list(unit_names))
    systemctl.reset_failed([u for u in unit_names if states.get(u) == "failed"])


def _stop_holder(fleet: Fleet) -> str:
    # The watcher first (BindsTo= would stop it too, but in no promised order): it hands
    # the agents' `stopped` events to their notifications on its way out.
    if systemctl.is_active([units.WATCHER_UNIT])[units.WATCHER_UNIT] in units.UP_STATES:
        systemctl.stop([units.WATCHER_UNIT])
    systemctl.stop([units.HOLDER_UNIT])
    reset_failed([units.HOLDER_UNIT, units.WATCHER_UNIT])
    # A server not run by the holder (left by the tmux supervisor) goes too.
    kill_server(fleet.tmux)
    return "holder: stopped"


def restart(
    fleet: Fleet, agents: list[Agent], whole: bool, progress: Callable[[], None]
) -> list[str]:
    """Stop then start (the caller holds the restart lock and passes its `progress`).
    Units that hit their start limit are reset on the way, so a restart always gets a
    fresh budget of retries."""
    require_manager(fleet)
    reset_failed([units.agent_unit(a.name) for a in agents])
    progress()
    lines = stop(fleet, agents, whole, progress)
    return lines + start(fleet, agents, progress)


def status_overlay(fleet: Fleet, agents: list[Agent], panes: Mapping[str, Pane]) -> Overlay:
    """systemd's side of `status`, from one `systemctl show` for holder and all agents."""
    require_manager(fleet)
    current = view(fleet, [a.name for a in agents])
    states = {
        a.name: unit_state(
            current.agents[a.name], panes.get(a.name), fleet.roster.runtime_for(a), a.restart
        )
        for a in agents
    }
    return Overlay(
        holder=holder_state(current.holder),
        states=states,
        restarts={n: i.restarts for n, i in current.agents.items()},
    )
