"""Fleet status (SPEC §7): two tmux round trips for any fleet size.

One `list-panes -a` gives every pane's pid, command and liveness; one chained
`capture-pane` call gives every live screen for the classifier. Per-agent records and
/proc supply restarts, last exit and uptime without touching tmux. Under the systemd
supervisor one `systemctl show` for all units adds systemd's view (see `Overlay`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mosaic import procs, session, state
from mosaic.fleet import Fleet
from mosaic.roster import Agent
from mosaic.runtimes import Runtime
from mosaic.screen import Screen, classify
from mosaic.session import Pane
from mosaic.state import AgentState

# A pane younger than this whose command is not yet the runtime is still "starting".
STARTING_GRACE_S = 5.0


def runtime_alive(pane: Pane, runtime: Runtime) -> bool:
    """The runtime's own process is in the pane: as the foreground command, or as the
    pane's process itself with a child in the foreground (a shell running a command)."""
    if pane.dead:
        return False
    if pane.command in runtime.processes:
        return True
    info = procs.info(pane.pid)
    return info is not None and info.comm in runtime.processes


def agent_state(pane: Pane | None, record: AgentState, runtime: Runtime, now: float) -> str:
    if pane is None or pane.dead:
        if record.failed:
            return "failed"
        if pane is not None and record.desired == "running":
            return "starting"  # the pane-died hook is deciding, or a respawn is due
        return "stopped"
    if runtime_alive(pane, runtime):
        return "running"
    if record.started_at is not None and now - record.started_at < STARTING_GRACE_S:
        return "starting"
    return "stopped"


@dataclass(frozen=True)
class Overlay:
    """What a supervisor knows better than the panes do (systemd: unit states, its restart
    count, the holder unit); the pane part of status (runtime pid, screens) stays shared."""

    holder: str
    states: Mapping[str, str]
    restarts: Mapping[str, int]


OverlayFn = Callable[[Fleet, list[Agent], Mapping[str, Pane]], Overlay]


def _overlay_of(fleet: Fleet) -> OverlayFn | None:
    if fleet.supervisor == "systemd":
        from mosaic import systemdsup

        return systemdsup.status_overlay
    return None


def collect(fleet: Fleet, agents: list[Agent]) -> dict[str, Any]:
    panes = session.list_panes(fleet.tmux)
    live = panes or {}
    now = time.time()
    records = {a.name: state.read(fleet.paths, a.name) for a in agents}
    overlay = _overlay_of(fleet)
    over = overlay(fleet, agents, live) if overlay is not None else None
    states = {
        a.name: agent_state(live.get(a.name), records[a.name], fleet.roster.runtime_for(a), now)
        for a in agents
    }
    if over is not None:
        states.update(over.states)
    running = [a for a in agents if states[a.name] == "running"]
    screens = session.capture_many(fleet.tmux, [live[a.name].id for a in running])
    rows = []
    for agent in agents:
        pane = live.get(agent.name)
        record = records[agent.name]
        activity = "unknown"
        if pane is not None and pane.id in screens:
            screen = Screen.from_capture(
                screens[pane.id], pane.cursor_x, pane.cursor_y, pane.width
            )
            activity = str(classify(fleet.roster.runtime_for(agent), screen).activity)
        alive = pane is not None and not pane.dead
        pid = pane.pid if alive and pane is not None else None
        uptime = procs.uptime_s(pid) if pid else None
        rows.append(
            {
                "name": agent.name,
                "runtime": agent.runtime,
                "state": states[agent.name],
                "activity": activity,
                "pid": pid,
                "uptime_s": round(uptime, 1) if uptime is not None else None,
                "restarts": over.restarts.get(agent.name, 0) if over else record.restarts,
                "last_exit": record.last_exit,
                "session": agent.name,
            }
        )
    return {
        "supervisor": fleet.supervisor,
        "socket": fleet.socket,
        "holder": over.holder if over else ("running" if panes is not None else "stopped"),
        "restart_in_progress": _restart_in_progress(fleet),
        "agents": rows,
    }


def _restart_in_progress(fleet: Fleet) -> dict[str, Any] | None:
    """Who holds the restart lock right now; never waits (SPEC §6.5)."""
    from mosaic.errors import ConfigError
    from mosaic.restartlock import current_holder

    try:
        holder = current_holder(fleet.paths.restart_lock)
    except ConfigError as exc:
        return {"error": exc.message}
    if holder is None:
        return None
    return {**holder.as_dict(), "line": holder.status_line()}
