"""Other machines, live, for the dashboard (docs/hosts.md, "Web"): their agents' screens
and their events. Both run only while some page listens.

Screens: one poller thread per host, shared by every open page: while some page shows one of that
host's agents, it runs the host's own `capture AGENT --escapes` every POLL_S over the host's one
multiplexed SSH connection, and hands a screen to the pages showing it when it changed
(or when a page just asked for it). A host no page watches costs nothing: its thread waits.
An unreachable host's screens say so (`error`), once per change of reason.

The text from a host is turned into the page's HTML by the same escaping as a local
screen (`web.actions.screen_document`): nothing a remote agent prints can become markup.

Events: one `hosts.eventfeed.Follow` of every host (each an `events --follow --json` there,
resumed after its last seq when its stream ends, as `events --follow` does), started from
the last moments of each log; the hub's thread drains what arrived and hands each line,
tagged with `host`, to every page.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from mosaic.config.paths import Paths
from mosaic.config.roster import Host, Roster
from mosaic.errors import MosaicError
from mosaic.hosts.eventmerge import Line
from mosaic.hosts.remote import Remote

POLL_S = 1.0
Publish = Callable[[str, dict[str, Any]], None]  # (agent, screen document)


def remote_document(host: str, name: str, text: str, error: str | None = None) -> dict[str, Any]:
    """A host's screen as the API and the stream carry it: `capture --escapes` there gives
    the screen with its colours (SGR sequences, turned into markup as a local screen's
    are), without the cursor."""
    from mosaic.web.actions import screen_document

    return {**screen_document(name, text, False, 0, 0), "host": host, "error": error}


def remote_screen(remote: Remote, name: str) -> dict[str, Any]:
    """One remote agent's screen, read on its host."""
    reply = remote.call(["capture", name, "--escapes"])
    return remote_document(remote.name, name, reply.out.decode("utf-8", "replace"))


class HostScreens:
    """Every host's poller; `want` is called from the hub's thread on each tick."""

    def __init__(self, paths: Paths, publish: Publish) -> None:
        self.paths = paths
        self.publish = publish
        self.pollers: dict[str, _Poller] = {}
        self._changed = threading.Event()

    def want(self, roster: Roster, wanted: frozenset[str], forced: set[str]) -> None:
        """Poll exactly the remote agents in `wanted`; send `forced` ones at once."""
        by_host: dict[str, set[str]] = {}
        for agent in roster.agents:
            if agent.host is not None and agent.name in wanted:
                by_host.setdefault(agent.host, set()).add(agent.name)
        hosts = {h.name: h for h in roster.hosts}
        for name in list(self.pollers):
            if hosts.get(name) != self.pollers[name].host:  # left the roster, or moved
                self.pollers.pop(name).stop()
        for name, names in by_host.items():
            if name not in self.pollers:
                self.pollers[name] = _Poller(self.paths, hosts[name], self._send)
                self.pollers[name].start()
            self.pollers[name].watch(frozenset(names), forced & names)
        for name, poller in self.pollers.items():
            if name not in by_host:
                poller.watch(frozenset(), set())

    def idle(self) -> None:
        """No page listens: every poller waits."""
        for poller in self.pollers.values():
            poller.watch(frozenset(), set())

    def changed(self) -> bool:
        """Whether some remote screen changed since the last call (its activity may have)."""
        was = self._changed.is_set()
        self._changed.clear()
        return was

    def close(self) -> None:
        for poller in self.pollers.values():
            poller.stop()
        for poller in self.pollers.values():
            poller.join(timeout=5)
        self.pollers.clear()

    def _send(self, name: str, doc: dict[str, Any], changed: bool) -> None:
        if changed:
            self._changed.set()
        self.publish(name, doc)


class _Poller(threading.Thread):
    def __init__(
        self, paths: Paths, host: Host, send: Callable[[str, dict[str, Any], bool], None]
    ) -> None:
        super().__init__(name=f"mosaic-web-host-{host.name}", daemon=True)
        self.paths = paths
        self.host = host
        self.send = send
        self._lock = threading.Lock()
        self._names: frozenset[str] = frozenset()
        self._forced: set[str] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._last: dict[str, str] = {}  # agent -> the JSON last sent of its screen

    def watch(self, names: frozenset[str], forced: set[str]) -> None:
        with self._lock:
            self._names = names
            self._forced |= forced
        if names:
            self._wake.set()
        else:
            self._wake.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        from mosaic.hosts import route

        remote = route.remote(self.paths, self.host)
        while not self._stopping.is_set():
            if not self._wake.wait(POLL_S):
                continue
            with self._lock:
                names, forced = sorted(self._names), set(self._forced)
                self._forced.clear()
            for gone in set(self._last) - set(names):
                del self._last[gone]  # sent afresh when a page shows it again
            for name in names:
                if self._stopping.is_set():
                    return
                try:
                    doc = remote_screen(remote, name)
                except MosaicError as exc:
                    doc = remote_document(self.host.name, name, "", exc.message)
                data = json.dumps(doc, sort_keys=True)
                fresh = data != self._last.get(name)
                if fresh or name in forced:
                    self._last[name] = data
                    self.send(name, doc, fresh)
            self._stopping.wait(POLL_S)


class HostEvents:
    """The follower of every host's event log; `want` and `drain` run on the hub's thread."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.lines: queue.SimpleQueue[Line] = queue.SimpleQueue()
        self._hosts: tuple[Host, ...] = ()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def want(self, roster: Roster | None, on: bool) -> None:
        """Follow the roster's hosts while `on`; again from the start when they changed."""
        hosts = tuple(roster.hosts) if roster is not None else ()
        if self._stop is not None and (not on or hosts != self._hosts):
            self.close()
        if on and hosts and self._stop is None:
            self._start(hosts)

    def drain(self) -> list[Line]:
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()  # its ssh streams end with it (`Follow.run`)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._stop, self._thread = None, None

    def _start(self, hosts: tuple[Host, ...]) -> None:
        from mosaic.hosts import eventfeed, route
        from mosaic.hosts.eventmerge import Since

        parts = [route.Part(h, ()) for h in hosts]
        # From a second back: a page loads the recent history first, and drops a line it
        # has (by host and seq).
        query = eventfeed.Query(Since({}, "1s", 1.0), (), None)
        follow = eventfeed.Follow(self.paths, parts, query, {p.name: None for p in parts})
        stop = threading.Event()
        self._stop, self._hosts = stop, hosts

        def ignore(notice: str) -> None:
            """A stream that ended is retried by the follower; the status names a host that
            cannot be reached."""

        self._thread = threading.Thread(
            target=follow.run, args=(self.lines.put, ignore, stop.is_set),
            name="mosaic-web-host-events", daemon=True,
        )  # fmt: skip
        self._thread.start()
