"""The watcher process: a loop of ticks, each a fixed list of steps (docs/architecture.md,
"watcher").

    beat      touch the heartbeat `status` reads (last_tick_age_s)
    roster    reload the roster when its file changed (a broken edit keeps the last good one)
    look      ask tmux which panes changed; capture only those (`changes.ChangeDetector`)
    track     classify the captured screens (the one classifier `status` and `send` use)
              and run each agent's tracker: debounced transitions, stuck (`tracker`)
    systemd   under systemd, ask the user manager about agents that just went down, to
              report `failed` when it gave up on one
    ...       further participants (`Watcher.add_step`), e.g. the outbox delivering to agents
              that `Tick.idle_agents()` lists
    commit    one short write transaction: the tick's events and the changed views
    notify    hand events past the notify cursor to their targets; advance the cursor
    prune     now and then, the log's age rule

Steps must return quickly (the tick is 0.2 s); a step with slow work (typing into an agent)
keeps its own worker and only hands work to it from its step.

At most one watcher runs per fleet: it holds `Paths.watcher_lock` for its whole life (a
second one waits there). On SIGTERM/SIGINT/SIGHUP it finishes the tick, lets participants'
workers finish (briefly), dispatches what is left to notify, gives running notifications a
moment, and exits 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import FrameType

from mosaic.agents.liveness import runtime_alive
from mosaic.base.flock import exclusive
from mosaic.base.fs import stamp as fs_stamp
from mosaic.config.eventtypes import EventType
from mosaic.config.load import load
from mosaic.config.paths import Paths, resolve
from mosaic.config.roster import Roster, Supervisor, effective_socket
from mosaic.errors import MosaicError
from mosaic.screen.classify import Activity, Screen, classify
from mosaic.store import db, events, watchview
from mosaic.store.events import Draft, draft
from mosaic.store.watchview import AgentView
from mosaic.tmux.client import Tmux
from mosaic.tmux.server import make_tmux
from mosaic.watch import beat
from mosaic.watch.changes import ChangeDetector, Look, OutputGate, TmuxSource
from mosaic.watch.notify import Notifier
from mosaic.watch.tracker import Observation, Settings, Tracker

TICK_S = 0.2
ROSTER_CHECK_S = 2.0
VIEW_WRITE_S = 1.0  # a screen change alone is written at most this often per agent
PRUNE_EVERY_S = 600.0
SYSTEMD_CHECK_S = 1.0
SYSTEMD_PENDING_S = 120.0
NOTIFY_BATCH = 500
EXITS_BATCH = 500  # unit exits read per systemd check; more wait for the next one
STOP_NOTIFY_WAIT_S = 3.0
STOP_PARTICIPANT_WAIT_S = 2.0
NOTIFY_CURSOR = "notify"


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    # The terminal it writes to may be gone (its tmux server was killed): keep working.
    with contextlib.suppress(OSError, ValueError):
        print(f"{stamp} mosaic watcher: {message}", file=sys.stderr, flush=True)


@dataclass
class Tick:
    """What the steps of one tick share."""

    now: float
    roster: Roster
    look: Look = field(default_factory=lambda: Look(0.0, False))
    drafts: list[Draft] = field(default_factory=list)
    running: dict[str, bool] = field(default_factory=dict)
    trackers: Mapping[str, Tracker] = field(default_factory=dict)

    def emit(self, event: Draft) -> None:
        self.drafts.append(event)

    def activity(self, agent: str) -> Activity:
        """The agent's confirmed (debounced) activity."""
        tracker = self.trackers.get(agent)
        view = tracker.view if tracker is not None else None
        return view.activity if view is not None else Activity.UNKNOWN

    def idle_agents(self) -> list[str]:
        """Agents whose runtime runs and whose screen has been idle past the debounce:
        where a queued message may be typed now."""
        return [
            a.name
            for a in self.roster.local_agents
            if self.running.get(a.name) and self.activity(a.name) is Activity.IDLE
        ]


Step = Callable[[Tick], None]
Close = Callable[[float], None]


class Watcher:
    def __init__(self, paths: Paths, tmux: Tmux, roster: Roster, supervisor: Supervisor,
                 conn: sqlite3.Connection) -> None:  # fmt: skip
        self.paths = paths
        self.tmux = tmux
        self.roster = roster
        self.supervisor = supervisor
        self.conn = conn
        self.detector = ChangeDetector(TmuxSource(tmux), gate=OutputGate(paths.agent_log))
        self.notifier = Notifier(lambda drafts: events.record(paths.db, drafts))
        self.trackers: dict[str, Tracker] = {}
        self.stored: dict[str, AgentView] = {}
        self.written_at: dict[str, float] = {}
        self.alive_cache: dict[str, tuple[tuple[object, ...], bool]] = {}
        self.was_running: dict[str, bool] = {}
        self.down_since: dict[str, float] = {}
        self.exits_seen = 0  # the last seq whose `exited`/`restarting` step_systemd took in
        self.roster_stamp = fs_stamp(paths.roster)
        self.next_roster_check = 0.0
        self.next_prune = 0.0
        self.next_systemd_check = 0.0
        self.stopping = False
        self.restored: set[str] = set()
        self.closers: list[Close] = []
        self.steps: list[tuple[str, Step]] = [
            ("beat", self.step_beat),
            ("roster", self.step_roster),
            ("look", self.step_look),
            ("track", self.step_track),
            ("systemd", self.step_systemd),
            ("commit", self.step_commit),
            ("notify", self.step_notify),
            ("prune", self.step_prune),
        ]

    def add_step(
        self, name: str, step: Step, before: str = "commit", close: Close | None = None
    ) -> None:
        """Add a participant to every tick, before the named step; `close(seconds)` runs
        when the watcher stops, to let its own workers finish within that time."""
        index = next(i for i, (n, _) in enumerate(self.steps) if n == before)
        self.steps.insert(index, (name, step))
        if close is not None:
            self.closers.append(close)

    # --- lifecycle -----------------------------------------------------------------------

    def restore(self) -> None:
        """Pick up each agent's last view, so nothing already reported is reported again."""
        self.stored = watchview.read_all(self.conn)
        for name, view in self.stored.items():
            self.trackers[name] = Tracker(name, view)
        # A first capture after a restart shows no change by itself: keep the stored time.
        self.restored = {n for n, v in self.stored.items() if v.last_output is not None}
        # Exits before this watcher are not news: a unit that failed then is not reported
        # again (its `failed` event, if any, was the previous watcher's).
        self.exits_seen = events.last_seq(self.conn)

    def run(self) -> None:
        while not self.stopping:
            started = time.monotonic()
            self.tick()
            time.sleep(max(0.0, TICK_S - (time.monotonic() - started)))
        for close in self.closers:
            close(STOP_PARTICIPANT_WAIT_S)
        self.step_notify(Tick(time.time(), self.roster))
        self.notifier.close(STOP_NOTIFY_WAIT_S)

    def tick(self) -> Tick:
        current = Tick(time.time(), self.roster, trackers=self.trackers)
        for name, step in self.steps:
            try:
                step(current)
            except (MosaicError, sqlite3.Error, OSError) as exc:
                log(f"{name}: {getattr(exc, 'message', None) or exc}")
        return current

    # --- steps ---------------------------------------------------------------------------

    def step_beat(self, tick: Tick) -> None:
        beat.beat(self.paths.watcher_heartbeat)

    def step_roster(self, tick: Tick) -> None:
        if tick.now < self.next_roster_check:
            return
        self.next_roster_check = tick.now + ROSTER_CHECK_S
        stamp = fs_stamp(self.paths.roster)
        if stamp == self.roster_stamp:
            return
        self.roster_stamp = stamp
        try:
            self.roster = load(self.paths.roster, cache_dir=self.paths.run)
        except MosaicError as exc:
            log(f"roster changed but cannot be read; keeping the last good one:\n{exc.message}")
            return
        tick.roster = self.roster
        gone = set(self.trackers) - {a.name for a in self.roster.local_agents}
        for name in gone:
            del self.trackers[name]
        if gone:
            with db.write(self.conn):
                watchview.forget(self.conn, gone)
            for name in gone:
                self.stored.pop(name, None)
        log("roster reloaded")

    def step_look(self, tick: Tick) -> None:
        tick.look = self.detector.look([a.name for a in self.roster.local_agents])

    def step_track(self, tick: Tick) -> None:
        look = tick.look
        for agent in self.roster.local_agents:  # a host's own watcher watches its agents
            runtime = self.roster.runtime_for(agent)
            settings = Settings(runtime.debounce_ms / 1000, agent.stuck_after)
            tracker = self.trackers.setdefault(agent.name, Tracker(agent.name))
            mark = look.marks.get(agent.name)
            running = False
            if mark is not None and not mark.pane.dead:
                key = (mark.pane.pid, mark.pane.command, runtime.name)
                cached = self.alive_cache.get(agent.name)
                if cached is None or cached[0] != key:
                    cached = (key, runtime_alive(mark.pane, runtime))
                    self.alive_cache[agent.name] = cached
                running = cached[1]
            tick.running[agent.name] = running
            if not look.server_up or not running:
                drafts = tracker.observe(Observation(False, None), tick.now, settings)
            elif agent.name in look.screens and mark is not None:
                pane = mark.pane
                screen = Screen.from_capture(
                    look.screens[agent.name], pane.cursor_x, pane.cursor_y, pane.width
                )
                seen = classify(runtime, screen)
                changed = agent.name in look.changed
                if agent.name in self.restored:
                    self.restored.discard(agent.name)
                    view = tracker.view
                    changed = changed and (view is None or view.pid != pane.pid)
                obs = Observation(True, pane.pid, seen.activity, seen.evidence, changed)
                drafts = tracker.observe(obs, tick.now, settings)
            else:
                drafts = tracker.tick(tick.now, settings)
            tick.drafts.extend(drafts)

    def step_systemd(self, tick: Tick) -> None:
        """systemd gives up on a crash-looping unit without running anything of ours: ask
        it, but only about agents that went down lately, and at most once a second. Went
        down: seen running, then not; or reported `exited`/`restarting` by its unit
        (`unitexec exited`) since the last check, since a crash loop can be too quick for
        any look to see the agent up (a look comes once a second when nothing prints)."""
        if self.supervisor is not Supervisor.SYSTEMD or not tick.look.server_up:
            return
        for name, running in tick.running.items():
            if self.was_running.get(name) and not running:
                self.down_since.setdefault(name, tick.now)
            elif running:
                self.down_since.pop(name, None)
        self.was_running = dict(tick.running)
        if tick.now < self.next_systemd_check:
            return
        self.next_systemd_check = tick.now + SYSTEMD_CHECK_S
        exits = events.Query(self.exits_seen, types=(EventType.EXITED, EventType.RESTARTING))
        for event in events.since(self.conn, exits, limit=EXITS_BATCH):
            self.exits_seen = event.seq
            if event.agent in tick.running and not tick.running[event.agent]:
                self.down_since.setdefault(event.agent, tick.now)
        for name, since in list(self.down_since.items()):
            if tick.now - since > SYSTEMD_PENDING_S:
                del self.down_since[name]
        if not self.down_since:
            return
        from mosaic.supervise.systemd import systemctl, units

        wanted = {units.agent_unit(n): n for n in self.down_since}
        states = systemctl.is_active(list(wanted))
        for unit, name in wanted.items():
            if states.get(unit) == "failed":
                tick.emit(draft(name, EventType.FAILED))
                del self.down_since[name]
            elif states.get(unit) == "inactive":
                del self.down_since[name]  # stopped on purpose; `stopped` says so

    def step_commit(self, tick: Tick) -> None:
        changed: list[AgentView] = []
        for name, tracker in self.trackers.items():
            view = tracker.view
            if view is None:
                continue
            old = self.stored.get(name)
            if old == view:
                continue
            only_output = old is not None and replace(old, last_output=view.last_output) == view
            if only_output and tick.now - self.written_at.get(name, 0.0) < VIEW_WRITE_S:
                continue
            changed.append(view)
        if not changed and not tick.drafts:
            return
        with db.write(self.conn):
            events.append(self.conn, tick.drafts, tick.now)
            watchview.write(self.conn, changed)
        for view in changed:
            self.stored[view.agent] = view
            self.written_at[view.agent] = tick.now
        for d in tick.drafts:
            log(f"event {d.type} {d.agent or '-'} {dict(d.fields) or ''}".rstrip())

    def step_notify(self, tick: Tick) -> None:
        after = events.cursor(self.conn, NOTIFY_CURSOR)
        if after is None:
            after = 0
        new = events.since(self.conn, events.Query(after), limit=NOTIFY_BATCH)
        if not new:
            return
        # The cursor moves when the jobs are handed over: a watcher that dies afterwards
        # never repeats them (a job still running then may be lost; see docs/reference.md).
        self.notifier.dispatch(self.roster.notify, new)
        with db.write(self.conn):
            events.set_cursor(self.conn, NOTIFY_CURSOR, new[-1].seq)

    def step_prune(self, tick: Tick) -> None:
        if tick.now < self.next_prune:
            return
        self.next_prune = tick.now + PRUNE_EVERY_S
        gone = events.prune(self.conn, tick.now)
        if gone:
            log(f"pruned {gone} old events")


# --- the process ---------------------------------------------------------------------------


def main(env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    paths = resolve(env=env)
    watcher: list[Watcher] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if watcher:
            watcher[0].stopping = True
        else:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A hangup means the terminal is gone: under the tmux supervisor, the server or session
    # the watcher lived in. Left running, it would hold the watcher lock against the one the
    # next `start` brings up, so it stops as on SIGTERM.
    signal.signal(signal.SIGHUP, on_signal)
    try:
        roster = load(paths.roster, cache_dir=paths.run)
        socket = effective_socket(roster, env)
    except MosaicError as exc:
        log(f"cannot start: {exc.message}")
        return 1
    from mosaic.supervise import choice

    record = choice.recorded(paths)
    supervisor = record.supervisor if record is not None else Supervisor.TMUX
    with exclusive(paths.watcher_lock):
        pid = os.getpid()
        beat.publish(paths.watcher_heartbeat, pid)
        conn = db.connect(paths.db)
        try:
            with db.write(conn):
                events.append(conn, [draft(None, EventType.WATCHER_STARTED, pid=pid)])
            w = Watcher(paths, make_tmux(paths, socket), roster, supervisor, conn)
            w.restore()
            from mosaic.outbox.deliver import attach

            attach(w, log)
            watcher.append(w)
            log(f"watching {len(roster.local_agents)} agent(s) on tmux socket {socket} "
                f"({supervisor} supervisor), pid {pid}")  # fmt: skip
            from mosaic.watch.serve import serving

            with serving(paths, socket, log):
                w.run()
        finally:
            beat.withdraw(paths.watcher_heartbeat, pid)
            conn.close()
    log("stopped")
    return 0
