"""Reading (and following) the event logs of every machine (docs/hosts.md, "Events").

Every host's watcher keeps its own log; the controller asks each machine for its part with
that machine's own `events --json` (this one: the local database) and merges
(`hosts.eventmerge`).

Following: one streaming `events --follow --json` per host, over its multiplexed SSH
connection, and the local log tailed by seq; every line is printed as it arrives. A host's
own follow never misses or repeats one of its events (it reads its log by seq, whatever its
watcher does), so across a lost connection the controller only has to resume that host
after the last seq it printed from it: a stream that ends (sshd restarted, the link silent
past ssh's keepalives, the host rebooted) is started again with `--since LAST`, every
second or so (backing off to `RETRY_MAX_S`) until the host answers. Nothing is lost,
nothing printed twice.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from subprocess import Popen

from mosaic.config.names import LOCAL_HOST
from mosaic.config.paths import Paths
from mosaic.config.roster import Roster
from mosaic.errors import MosaicError, UsageError
from mosaic.hosts import route
from mosaic.hosts.eventmerge import Line, Since, for_agent, line_of, ordered, split_lines
from mosaic.hosts.remote import HostError, Remote, end
from mosaic.store import db, events

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
LOCAL_POLL_S = 0.5  # while this machine has no event log yet


def machines(roster: Roster) -> list[str]:
    """Every machine of the fleet, this one first: the names events carry in `host`."""
    return [LOCAL_HOST, *(h.name for h in roster.hosts)]


def parts(roster: Roster, agent: str | None, only: Sequence[str]) -> list[route.Part]:
    """The machines to read: every one (this one too: its log outlives agents that moved
    away), or AGENT's, or those `only` names."""
    known = machines(roster)
    for name in only:
        if name not in known:
            raise UsageError(f"unknown host {name!r}; known: {', '.join(known)}")
    where = None
    if agent is not None:
        where = roster.agent(agent).host or LOCAL_HOST
    found = [route.Part(None, ())] + [route.Part(h, ()) for h in roster.hosts]
    return [
        p for p in found
        if (where is None or p.name == where) and (not only or p.name in only)
    ]  # fmt: skip


@dataclass(frozen=True)
class Query:
    since: Since
    types: tuple[str, ...]
    agent: str | None
    started: float = field(default_factory=time.time)

    def type_args(self) -> list[str]:
        return [arg for t in self.types for arg in ("--type", t)]

    def local(self, after: int | None = None) -> events.Query:
        """This machine's query: after `after`, or (None) from where `--since` says."""
        since_ts = None
        if self.since.duration is not None:
            since_ts = events.iso(self.started - self.since.seconds)
        first = self.since.seqs.get(LOCAL_HOST, 0) if after is None else after
        return events.Query(first, since_ts, self.types, self.agent)

    def resume_args(self, machine: str, last: int | None) -> list[str]:
        """`--since` for a host's follow: after the last seq printed from it; before any,
        what was asked (a duration stretched by the time gone since, rounded up: a second
        too much of history, never one event missed)."""
        if last is not None:
            return ["--since", str(last)]
        if self.since.duration is not None and machine not in self.since.seqs:
            stretched = math.ceil(self.since.seconds + time.time() - self.started) + 1
            return ["--since", f"{stretched}s"]
        return self.since.args(machine)


@dataclass(frozen=True)
class Read:
    """One machine's part of a history: its lines, and the seq to follow it from (None:
    nothing of it seen, so a follow asks what was asked)."""

    lines: list[Line]
    resume: int | None


def history(
    paths: Paths, machine_parts: Sequence[route.Part], query: Query
) -> tuple[list[Line], dict[str, int | None], list[MosaicError]]:
    """Every machine's matching events, in parallel, ordered as one history; where to
    follow each from; the machines that could not be read."""

    def local(part: route.Part) -> Read:
        if not paths.db.exists():
            return Read([], None)  # no log here yet: none is made for reading
        with db.opened(paths.db) as conn:
            top = events.last_seq(conn)
            rows = events.json_lines(conn, query.local(), top)
        # Followed from what was read, or from a later seq `--since` named.
        resume = max(top, query.since.seqs.get(LOCAL_HOST, 0))
        return Read([ln for _, text in rows if (ln := line_of(LOCAL_HOST, text))], resume)

    def remote(host: Remote, part: route.Part) -> Read:
        reply = host.call(["events", "--json", *query.since.args(part.name),
                           *query.type_args()])  # fmt: skip
        lines, _ = split_lines(part.name, reply.out + b"\n")
        last = max((ln.seq for ln in lines), default=query.since.seqs.get(part.name))
        return Read(for_agent(lines, query.agent), last)

    done = route.each(paths, machine_parts, local, remote)
    names = [d.part.name for d in done]
    lines = ordered((ln for d in done if d.value for ln in d.value.lines), names)
    resume = {d.part.name: d.value.resume if d.value else None for d in done}
    return lines, resume, [d.error for d in done if d.error is not None]


class Follow:
    """Tail every machine's log at once; `run` prints in arrival order until `stopped()`."""

    def __init__(
        self,
        paths: Paths,
        machine_parts: Sequence[route.Part],
        query: Query,
        resume: dict[str, int | None],
    ) -> None:
        self.paths = paths
        self.parts = list(machine_parts)
        self.query = query
        self.resume = resume
        self.out: queue.Queue[Line | str] = queue.Queue()
        self.stop = threading.Event()
        self.procs: set[Popen[bytes]] = set()
        self.lock = threading.Lock()

    def run(
        self,
        emit: Callable[[Line], None],
        notice: Callable[[str], None],
        stopped: Callable[[], bool],
    ) -> None:
        threads = [
            threading.Thread(target=self._guard, args=(part,), daemon=True) for part in self.parts
        ]
        for t in threads:
            t.start()
        try:
            while not stopped():
                try:
                    item = self.out.get(timeout=0.2)
                except queue.Empty:
                    continue
                if isinstance(item, str):
                    notice(item)
                else:
                    emit(item)
        finally:
            self.stop.set()
            with self.lock:
                procs = list(self.procs)
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for t in threads:
                t.join(timeout=5)

    def _guard(self, part: route.Part) -> None:
        """One machine's follower; an error of ours ends only that machine's part."""
        try:
            if part.host is None:
                self._local()
            else:
                self._remote(route.remote(self.paths, part.host), part.name)
        except MosaicError as exc:
            self.out.put(f"{exc.message} (no longer followed)")

    def _local(self) -> None:
        while not self.paths.db.exists():  # it appears with the first event recorded here
            if self.stop.wait(LOCAL_POLL_S):
                return
        with db.opened(self.paths.db) as conn:
            q = self.query.local(self.resume.get(LOCAL_HOST))
            for batch in events.follow(conn, q, self.stop.is_set, events.json_lines):
                for _, text in batch:
                    line = line_of(LOCAL_HOST, text)
                    if line is not None:
                        self.out.put(line)

    def _remote(self, host: Remote, name: str) -> None:
        last = self.resume.get(name)
        delay = RETRY_FIRST_S
        told = ""
        while not self.stop.is_set():
            args = ["events", "--follow", "--json", *self.query.resume_args(name, last),
                    *self.query.type_args()]  # fmt: skip
            proc = host.link.popen(host.command(args))
            with self.lock:
                self.procs.add(proc)
            if self.stop.is_set():
                end(proc)
                return
            assert proc.stdout is not None and proc.stderr is not None
            pending = b""
            try:
                while chunk := os.read(proc.stdout.fileno(), 65536):
                    lines, pending = split_lines(name, pending + chunk)
                    for line in lines:
                        last = line.seq
                        if self.query.agent is None or line.agent == self.query.agent:
                            self.out.put(line)
                    if told:
                        told, delay = "", RETRY_FIRST_S
                        self.out.put(f"host {name}: following again")
                err = proc.stderr.read().decode("utf-8", errors="replace").strip()
                code = proc.wait()
            finally:
                end(proc)
                with self.lock:
                    self.procs.discard(proc)
            if self.stop.is_set():
                return
            if code == 0:
                lost = HostError(name, f"host {name}: its events --follow ended")
            else:
                lost = host.failure(code, err or "the connection was lost")
            if lost.message != told:
                told = lost.message
                self.out.put(f"{lost.message}; following it again as soon as it answers")
            if self.stop.wait(delay):
                return
            delay = min(delay * 2, RETRY_MAX_S)
