"""One agent's activity as the watcher reports it: debounced transitions, turns and `stuck`.

Pure: observations and the clock go in, events come out, so the rules are tested without
tmux (tests/test_watch_tracker.py). The state is an `AgentView`, the very row the watcher
stores, so a restarted watcher resumes where the last one stopped and reports nothing twice.

Rules:
- A screen classification must hold for the runtime's `debounce_ms` before it counts: one
  spinner frame (busy for an instant) is not a turn.
- `busy` when the activity becomes busy; `awaiting_approval` when it becomes a dialog, with
  the lines that ask; `idle` when it becomes idle after a turn (busy or a dialog before it),
  with `busy_s` from the turn's first busy screen to the first idle one. An agent coming up
  idle has had no turn: nothing is reported.
- `stuck` once per busy period, when busy has lasted `stuck_after` seconds (0: never).
- A runtime that is not running (or was replaced: a new pid) starts over, silently: its
  exit and restart are reported by the supervisor, which knows them for sure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mosaic.config.eventtypes import EventType
from mosaic.screen.classify import Activity
from mosaic.store.events import Draft, draft
from mosaic.store.watchview import AgentView


@dataclass(frozen=True)
class Settings:
    debounce_s: float = 0.5
    stuck_after_s: float = 900.0


@dataclass(frozen=True)
class Observation:
    """One fresh look at the agent's pane."""

    running: bool
    pid: int | None
    activity: Activity = Activity.UNKNOWN
    evidence: tuple[str, ...] = ()
    changed: bool = True  # the screen differs from the previous look (or there was none)


def fresh(agent: str, pid: int | None, now: float) -> AgentView:
    return AgentView(
        agent=agent, pid=pid, activity=Activity.UNKNOWN, since=now, observed=Activity.UNKNOWN,
        observed_since=now, last_output=None, turn_since=None, busy_since=None,
    )  # fmt: skip


class Tracker:
    """The state of one agent between ticks; `view` is what gets stored."""

    def __init__(self, agent: str, view: AgentView | None = None) -> None:
        self.agent = agent
        self.view = view
        self.evidence: tuple[str, ...] = ()

    def observe(self, obs: Observation, now: float, settings: Settings) -> list[Draft]:
        """A new look at the pane, then the same checks as `tick`."""
        view = self.view
        if not obs.running:
            if view is None or view.pid is not None:
                self.view = fresh(self.agent, None, now)
            return []
        if view is None or view.pid != obs.pid:
            view = fresh(self.agent, obs.pid, now)
        if obs.changed:
            view = replace(view, last_output=now)
        if obs.activity is not view.observed:
            view = replace(view, observed=obs.activity, observed_since=now)
        if obs.activity is view.observed:
            self.evidence = obs.evidence
        self.view = view
        return self.tick(now, settings)

    def tick(self, now: float, settings: Settings) -> list[Draft]:
        """Time passing with the screen unchanged: a pending activity may now count, a long
        busy period may now be stuck."""
        view = self.view
        if view is None or view.pid is None:
            return []
        out: list[Draft] = []
        if view.observed is not view.activity and now - view.observed_since >= settings.debounce_s:
            view, event = _transition(view, self.evidence)
            if event is not None:
                out.append(event)
        if (
            view.activity is Activity.BUSY
            and settings.stuck_after_s > 0
            and view.busy_since is not None
            and not view.stuck_sent
            and now - view.busy_since >= settings.stuck_after_s
        ):
            out.append(draft(self.agent, EventType.STUCK, busy_s=_secs(now - view.busy_since)))
            view = replace(view, stuck_sent=True)
        self.view = view
        return out


def _transition(view: AgentView, evidence: tuple[str, ...]) -> tuple[AgentView, Draft | None]:
    """The confirmed activity becomes the observed one; the event that change means."""
    new, at, agent = view.observed, view.observed_since, view.agent
    changed = replace(view, activity=new, since=at)
    if new is Activity.BUSY:
        return (
            replace(changed, turn_since=view.turn_since if view.turn_since is not None else at,
                    busy_since=at, stuck_sent=False),
            draft(agent, EventType.BUSY),
        )  # fmt: skip
    if new is Activity.AWAITING_APPROVAL:
        turn = view.turn_since
        return (
            replace(changed, busy_since=None, turn_since=turn),
            draft(agent, EventType.AWAITING_APPROVAL, prompt=list(evidence)),
        )
    if new is Activity.IDLE:
        done = replace(changed, turn_since=None, busy_since=None)
        if view.turn_since is None:
            return done, None
        return done, draft(agent, EventType.IDLE, busy_s=_secs(at - view.turn_since))
    return replace(changed, busy_since=None), None


def _secs(value: float) -> float:
    return round(max(0.0, value), 1)
