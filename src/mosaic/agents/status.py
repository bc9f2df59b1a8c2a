"""Fleet status (docs/reference.md, "status"): two tmux round trips for any fleet size.

One `list-panes -a` gives every pane's pid, command and liveness; one chained
`capture-pane` call gives every live screen for the classifier. The supervision records
(one database query) and /proc supply restarts, last exit and uptime without touching tmux.
Under the systemd supervisor one `systemctl show` for all units adds systemd's view.
"""

from __future__ import annotations

import time

from mosaic import supervise
from mosaic.agents import state
from mosaic.agents.liveness import AgentRunState, pane_state
from mosaic.config.paths import Paths
from mosaic.config.roster import Agent
from mosaic.fleet import Fleet, open_fleet
from mosaic.screen.classify import Activity, Screen, classify
from mosaic.tmux.panes import capture_many, list_panes

# `typing` costs a measurable share of `status`'s start-up; annotations only need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def fleet_status(paths: Paths, agent: str | None) -> dict[str, Any]:
    """The status document of AGENT (or every agent) of the fleet at `paths`."""
    fleet = open_fleet(paths)
    return collect(fleet, fleet.roster.select(agent))


def collect(fleet: Fleet, agents: list[Agent]) -> dict[str, Any]:
    panes = list_panes(fleet.tmux)
    live = panes or {}
    now = time.time()
    records = state.read_many(fleet.paths, [a.name for a in agents])
    over = supervise.overlay(fleet, agents, live)
    states = {
        a.name: pane_state(live.get(a.name), records[a.name], fleet.roster.runtime_for(a), now)
        for a in agents
    }
    if over is not None:
        states.update(over.states)
    running = [a for a in agents if states[a.name] is AgentRunState.RUNNING]
    screens = capture_many(fleet.tmux, [live[a.name].id for a in running])
    rows = []
    for agent in agents:
        pane = live.get(agent.name)
        record = records[agent.name]
        activity = Activity.UNKNOWN
        if pane is not None and pane.id in screens:
            screen = Screen.from_capture(
                screens[pane.id], pane.cursor_x, pane.cursor_y, pane.width
            )
            activity = classify(fleet.roster.runtime_for(agent), screen).activity
        alive = pane is not None and not pane.dead
        pid = pane.pid if alive and pane is not None else None
        uptime = _uptime(pid, record, now)
        rows.append(
            {
                "name": agent.name,
                "runtime": agent.runtime,
                "state": str(states[agent.name]),
                "activity": str(activity),
                "pid": pid,
                "uptime_s": round(uptime, 1) if uptime is not None else None,
                "restarts": over.restarts.get(agent.name, 0) if over else record.restarts,
                "last_exit": record.last_exit,
                "session": agent.name,
            }
        )
    return {
        "supervisor": str(fleet.supervisor),
        "socket": fleet.socket,
        "holder": over.holder if over else ("running" if panes is not None else "stopped"),
        "restart_in_progress": _restart_in_progress(fleet),
        "agents": rows,
    }


def _uptime(pid: int | None, record: state.AgentState, now: float) -> float | None:
    """From the supervision record when it is about this very process (every launch writes
    `started_at` just before and the pid just after), so status reads no file per agent;
    from /proc otherwise."""
    if not pid:
        return None
    if record.pid == pid and record.started_at is not None:
        return max(0.0, now - record.started_at)
    from mosaic.base import procs

    return procs.uptime_s(pid)


def _restart_in_progress(fleet: Fleet) -> dict[str, Any] | None:
    """Who holds the restart lock right now; never waits. The restart lock's module (a
    fifth of status's imports) is loaded only when the lock is held."""
    from mosaic.base.flock import held
    from mosaic.errors import ConfigError

    try:
        if not held(fleet.paths.restart_lock):
            return None
        from mosaic.supervise.restartlock import current_holder

        holder = current_holder(fleet.paths.restart_lock)
    except ConfigError as exc:
        return {"error": exc.message}
    if holder is None:
        return None
    return {**holder.as_dict(), "line": holder.status_line()}
