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
from mosaic.agents.settings import drift, effective
from mosaic.config.roster import Agent
from mosaic.fleet import Fleet
from mosaic.screen.classify import Activity, Screen, classify
from mosaic.store import db, events, watchview
from mosaic.store.watchview import AgentView
from mosaic.tmux.panes import capture_many, list_panes
from mosaic.watch import beat

# `typing` costs a measurable share of `status`'s start-up; annotations only need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



def collect(fleet: Fleet, agents: list[Agent]) -> dict[str, Any]:
    panes = list_panes(fleet.tmux)
    live = panes or {}
    now = time.time()
    with db.opened(fleet.paths.db) as conn:
        records = state.fetch_many(conn, [a.name for a in agents])
        views = watchview.read_all(conn)
    watcher = beat.read(fleet.paths.watcher_heartbeat, now)
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
                **_drift(fleet, agent, record, alive),
                **_watched(views.get(agent.name) if watcher.running else None, pid,
                           activity, now),
            }
        )  # fmt: skip
    return {
        "supervisor": str(fleet.supervisor),
        "socket": fleet.socket,
        "holder": over.holder if over else ("running" if panes is not None else "stopped"),
        "restart_in_progress": _restart_in_progress(fleet),
        "watcher": watcher.as_json(),
        "agents": rows,
    }


def _drift(fleet: Fleet, agent: Agent, record: state.AgentState, alive: bool) -> dict[str, Any]:
    """Whether the running agent's settings differ from the roster's (`agents.settings`);
    an agent that does not run has nothing to differ."""
    reasons = drift(record.settings, effective(fleet.roster, agent)) if alive else []
    return {"drift": bool(reasons), "drift_reason": "; ".join(reasons) or None}


def _watched(
    view: AgentView | None, pid: int | None, activity: Activity, now: float
) -> dict[str, Any]:
    """What the watcher adds to a row: since when the activity this status saw has been
    on the screen, and how long the screen has been still. Null without a running watcher,
    a running runtime, or a view of this very runtime."""
    if view is None or pid is None or view.pid != pid:
        return {"activity_since": None, "last_output_age_s": None}
    if activity is view.observed:
        since: float | None = view.observed_since
    elif activity is view.activity:
        since = view.since
    else:
        since = None  # changed after the watcher's last look
    age = None if view.last_output is None else round(max(0.0, now - view.last_output), 1)
    return {
        "activity_since": events.iso(since) if since is not None else events.iso(now),
        "last_output_age_s": age,
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
