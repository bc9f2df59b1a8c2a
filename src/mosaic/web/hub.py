"""The live feed behind the dashboard's stream (docs/architecture.md, "web"): one look at
the fleet per tick, shared by every open page.

A thread ticks every TICK_S while at least one page listens (with none, it only follows
the event log, once per IDLE_TICK_S):

    fleet     every ROSTER_CHECK_S, reopen the fleet when the roster file changed
    look      `watch.changes.ChangeDetector`, as the watcher uses it: one `list-panes`
              when a shown agent's transcript grew (else once a second) and a capture,
              with colours, of only the screens that may have changed and that some page
              shows — or every agent's when no watcher runs, so that the dashboard
              classifies them itself
    screens   each changed screen a page shows, as HTML (`sgr.to_html`), to those pages;
              an agent on another machine: its host's poller (`web.hostfeed`), one per
              host, runs `capture` there while a page shows one of its agents
    events    when the database changed (`PRAGMA data_version`), the new events' JSON lines
              (the lines of `events --json`) to every page; with hosts, each tagged with
              `host`, and every host's own, from `web.hostfeed`'s one follower
    status    the `status --json` document, recomputed when an agent's pane appeared,
              vanished, died or changed pid, a lifecycle event arrived, no watcher runs and
              a captured screen reads differently, or STATUS_EVERY_S passed; at most once per
              STATUS_GAP_S. Activity events (busy, idle, awaiting_approval) only patch the
              row, so a busy fleet does not recapture every screen per event.

Messages go to the asyncio loop with `call_soon_threadsafe`; each page has its own bounded
queue, and a page that falls behind is dropped (its EventSource reconnects and resumes
from its last event seq, read back from the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mosaic.base.fs import stamp as fs_stamp
from mosaic.config.paths import Paths
from mosaic.errors import MosaicError
from mosaic.tmux.panes import Pane
from mosaic.web import actions

TICK_S = 0.25
IDLE_TICK_S = 1.0
ROSTER_CHECK_S = 2.0
STATUS_EVERY_S = 10.0
STATUS_GAP_S = 0.3
REMOTE_STATUS_GAP_S = 2.0  # a status asks every host: at most this often for their screens
QUEUE_MAX = 512
ACTIVITY_EVENTS = {"busy": "busy", "idle": "idle", "awaiting_approval": "awaiting_approval"}


@dataclass(frozen=True)
class Message:
    """One Server-Sent Event: `kind` is its event name, `data` JSON text. `seq` and `host`
    (events only: its seq in the log of that machine, None for this one) make the SSE id a
    reconnecting page resumes from; `agent` (screens only) limits it to the pages showing
    that agent."""

    kind: str
    data: str
    seq: int | None = None
    agent: str | None = None
    host: str | None = None


@dataclass(eq=False)
class Subscriber:
    screen: str | None
    queue: asyncio.Queue[Message | None] = field(default_factory=asyncio.Queue)
    dropped: bool = False


class Hub:
    def __init__(self, paths: Paths, loop: asyncio.AbstractEventLoop) -> None:
        self.paths = paths
        self.loop = loop
        self.subscribers: set[Subscriber] = set()
        self.top = 0  # the newest event seq handed to the pages
        self.host_tops: dict[str, int] = {}  # the same, of each host's log heard from
        self.last_status: str | None = None
        self._lock = threading.Lock()
        self._wanted: frozenset[str] = frozenset()  # screens some page shows
        self._forced: set[str] = set()  # screens to send whether changed or not
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mosaic-web-hub", daemon=True)
        self._feed = _Feed(paths, self._publish)

    # --- the loop side -------------------------------------------------------------------

    def start(self) -> None:
        self.top = self._feed.start()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._feed.close()
        for sub in self.subscribers:
            sub.queue.put_nowait(None)

    def subscribe(self, screen: str | None) -> Subscriber:
        sub = Subscriber(screen, asyncio.Queue())
        self.subscribers.add(sub)
        self._update_wanted(screen)
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        self._update_wanted(None)

    def _update_wanted(self, forced: str | None) -> None:
        wanted = frozenset(s.screen for s in self.subscribers if s.screen is not None)
        with self._lock:
            self._wanted = wanted
            if forced is not None:
                self._forced.add(forced)
            if not self.subscribers:
                self._wake.clear()
                self.last_status = None  # stale by the time a page comes back

    def _publish(self, message: Message) -> None:
        """From the hub's thread: hand `message` to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self.loop.call_soon_threadsafe(self._fanout, message)

    def position(self) -> dict[str, int]:
        """Where a page that starts now starts in every machine's log (this one first)."""
        from mosaic.config.names import LOCAL_HOST

        return {LOCAL_HOST: self.top, **self.host_tops}

    def _fanout(self, message: Message) -> None:
        if message.kind == "event" and message.seq is not None:
            if message.host is None:
                self.top = max(self.top, message.seq)
            else:
                self.host_tops[message.host] = max(self.host_tops.get(message.host, 0),
                                                   message.seq)  # fmt: skip
        elif message.kind == "status" and self.subscribers:
            self.last_status = message.data
        for sub in list(self.subscribers):
            if sub.dropped or (message.agent is not None and sub.screen != message.agent):
                continue
            if sub.queue.qsize() >= QUEUE_MAX:
                sub.dropped = True
                sub.queue.put_nowait(None)
                continue
            sub.queue.put_nowait(message)

    # --- the hub's thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._wake.wait(IDLE_TICK_S):
                # No page: only keep up with the event log (one cheap pragma), so the
                # next page does not get a backlog pushed at it.
                self._step(self._feed.events_only)
                continue
            if self._stopping.is_set():
                break
            started = time.monotonic()
            with self._lock:
                wanted, forced = self._wanted, set(self._forced)
                self._forced.clear()
            self._step(functools.partial(self._feed.tick, wanted, forced))
            self._stopping.wait(max(0.0, TICK_S - (time.monotonic() - started)))

    def _step(self, step: Callable[[], None]) -> None:
        try:
            step()
        except (MosaicError, sqlite3.Error, OSError) as exc:
            error = getattr(exc, "message", None) or str(exc)
            self._publish(Message("problem", json.dumps({"error": error})))


class _Feed:
    """The hub thread's state: the fleet, the change detector, the event cursor, the last
    status document. Only ever touched from that thread."""

    def __init__(self, paths: Paths, publish: Callable[[Message], None]) -> None:
        self.paths = paths
        self.publish = publish
        self.fleet: Any = None
        self.detector: Any = None
        self.roster_stamp: tuple[int, int, int] | None = None
        self.next_roster_check = 0.0
        self.conn: sqlite3.Connection | None = None
        self.data_version: int | None = None
        self.after = 0
        self.lifecycle: dict[str, tuple[int, bool]] | None = None
        self.doc: dict[str, Any] | None = None
        self.status_due = True
        self.status_at = 0.0
        self.remote_status_at = 0.0
        from mosaic.web.hostfeed import HostEvents, HostScreens

        self.hosts = HostScreens(paths, self._remote_screen)
        self.host_events = HostEvents(paths)

    def start(self) -> int:
        """Open the database; the seq pages start after."""
        from mosaic.store import db, events

        self.conn = db.connect(self.paths.db)
        self.after = events.last_seq(self.conn)
        return self.after

    def close(self) -> None:
        self.hosts.close()
        self.host_events.close()
        if self.conn is not None:
            self.conn.close()

    def events_only(self) -> None:
        """Between pages: follow the event log; the next page gets a fresh document."""
        self._events()
        self.hosts.idle()
        self.host_events.want(None, False)
        self.status_due = True

    def tick(self, wanted: frozenset[str], forced: set[str]) -> None:
        now = time.monotonic()
        self._fleet(now)
        self._events()
        self._look(wanted, forced)
        if self.fleet is not None:
            self.hosts.want(self.fleet.roster, wanted, forced)
            self.host_events.want(self.fleet.roster, True)
        for line in self.host_events.drain():
            self.publish(Message("event", line.json(), seq=line.seq, host=line.host))
            self._patch(dict(line.event))
        if self.hosts.changed() and now - self.remote_status_at >= REMOTE_STATUS_GAP_S:
            # A remote screen changed: its activity may have (read by the host's watcher).
            self.remote_status_at = now
            self.status_due = True
        gap_ok = now - self.status_at >= STATUS_GAP_S
        if (self.status_due and gap_ok) or now - self.status_at >= STATUS_EVERY_S:
            self._status(now)

    def _fleet(self, now: float) -> None:
        if self.fleet is not None and now < self.next_roster_check:
            return
        self.next_roster_check = now + ROSTER_CHECK_S
        from mosaic.fleet import open_fleet

        stamp = fs_stamp(self.paths.roster)
        if self.fleet is not None and stamp == self.roster_stamp:
            return
        fleet = open_fleet(self.paths)
        self.roster_stamp = stamp
        self.status_due = True
        if self.fleet is None or fleet.socket != self.fleet.socket:
            from mosaic.watch.changes import ChangeDetector, OutputGate, TmuxSource

            self.detector = ChangeDetector(
                TmuxSource(fleet.tmux, escapes=True), gate=OutputGate(fleet.paths.agent_log)
            )
        self.fleet = fleet

    def _events(self) -> None:
        from mosaic.store import events

        conn = self.conn
        assert conn is not None
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        if version == self.data_version:
            return
        self.data_version = version
        top = events.last_seq(conn)
        if top <= self.after:
            return
        lines = events.json_lines(conn, events.Query(self.after), top)
        self.after = top
        tagged = self.fleet is not None and bool(self.fleet.roster.hosts)
        for seq, line in lines:
            if tagged:
                # With hosts every line names its machine, as `events --json` prints it.
                line = _tagged(line)
            self.publish(Message("event", line, seq=seq))
            self._patch(json.loads(line))

    def _patch(self, event: dict[str, Any]) -> None:
        """What an event changes in the status document: an activity event sets the row's
        activity; anything else about an agent calls for a fresh document."""
        name, kind = event.get("agent"), event.get("type")
        if name is None:
            if kind == "watcher_started":
                self.status_due = True
            return
        activity = ACTIVITY_EVENTS.get(str(kind))
        if activity is None:
            if kind not in ("sent", "notify_failed", "stuck"):
                self.status_due = True
            return
        row = self._row(str(name))
        if row is not None and row.get("state") == "running" and row.get("activity") != activity:
            row["activity"] = activity
            row["activity_since"] = event.get("ts")
            self._send_status()

    def _look(self, wanted: frozenset[str], forced: set[str]) -> None:
        fleet, detector = self.fleet, self.detector
        if fleet is None or detector is None:
            return
        # This machine's agents; other machines' screens come from `hostfeed`.
        names = [a.name for a in fleet.roster.agents if a.host is None]
        local = set(names)
        watcher = (self.doc or {}).get("watcher") or {}
        watched = watcher.get("state") == "running"
        for name in forced:
            detector.seen.pop(name, None)  # captured again, and so sent again
        look = detector.look([n for n in names if n in wanted or not watched], bool(forced))
        lifecycle = {n: (m.pane.pid, m.pane.dead) for n, m in look.marks.items() if n in local}
        if lifecycle != self.lifecycle:
            if self.lifecycle is not None:
                self.status_due = True
            self.lifecycle = lifecycle
        for name in sorted(look.changed | (forced & set(look.screens))):
            pane = look.marks[name].pane
            text = look.screens[name]
            if name in wanted:
                self._screen(name, text, pane)
            if not watched:
                self._classify(name, text, pane)
        for name in (forced & local) - set(look.screens):
            mark = look.marks.get(name)
            if mark is None:
                doc = {**actions.screen_document(name, "", True, 0, 0), "running": False}
                self.publish(Message("screen", json.dumps(doc), agent=name))
                continue
            # A dead pane, which the detector never captures: what tmux left on it (the
            # exit status) is worth showing.
            from mosaic.tmux.panes import capture_many

            text = capture_many(fleet.tmux, [mark.pane.id], escapes=True).get(mark.pane.id, "")
            self._screen(name, text, mark.pane)

    def _remote_screen(self, name: str, doc: dict[str, Any]) -> None:
        """From a host's poller thread."""
        self.publish(Message("screen", json.dumps(doc, ensure_ascii=False), agent=name))

    def _screen(self, name: str, captured: str, pane: Pane) -> None:
        doc = actions.screen_document(name, captured, pane.dead, pane.cursor_x, pane.cursor_y)
        self.publish(Message("screen", json.dumps(doc, ensure_ascii=False), agent=name))

    def _classify(self, name: str, captured: str, pane: Pane) -> None:
        """Without a watcher, the dashboard reads activity itself (the one classifier)."""
        from mosaic.screen.classify import Screen, classify
        from mosaic.web.sgr import plain

        row = self._row(name)
        if row is None or row.get("state") != "running":
            return
        screen = Screen.from_capture(plain(captured), pane.cursor_x, pane.cursor_y, pane.width)
        roster = self.fleet.roster
        activity = classify(roster.runtime_for(roster.agent(name)), screen).activity
        if str(activity) != row.get("activity"):
            self.status_due = True

    def _row(self, name: str) -> dict[str, Any] | None:
        for row in (self.doc or {}).get("agents", []):
            if isinstance(row, dict) and row.get("name") == name:
                return row
        return None

    def _status(self, now: float) -> None:
        self.status_at = now
        self.status_due = False
        try:
            self.doc = actions.status_document(self.paths)
        except MosaicError as exc:
            self.publish(Message("problem", json.dumps({"error": exc.message})))
            return
        self._send_status()

    def _send_status(self) -> None:
        from mosaic.cli.render import json_document

        self.publish(Message("status", json_document(self.doc).rstrip("\n")))


def _tagged(line: str) -> str:
    from mosaic.config.names import LOCAL_HOST
    from mosaic.hosts.eventmerge import line_of

    found = line_of(LOCAL_HOST, line)
    return found.json() if found is not None else line
