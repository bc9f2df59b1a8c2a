"""What the dashboard's API does, each through the library calls the CLI makes
(docs/reference.md, "web"), so a document from the API and from the CLI are one and the
same: `status --json`, `events --json`, `send --json`, `approve --json`.

Every function blocks (tmux, SQLite, typing with proof) and raises `MosaicError` for what
a user is told; the server runs them on worker threads and maps the errors to statuses.
This module is also the one place the dashboard reaches the rest of mosaic for a state
change, so routing (hosts) or the outbox plug in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from mosaic.config.paths import Paths
from mosaic.errors import OperationFailed, UsageError
from mosaic.web import sgr

if TYPE_CHECKING:
    from mosaic.config.roster import Roster

Lifecycle = Literal["start", "stop", "restart"]
LIFECYCLE: tuple[Lifecycle, ...] = ("start", "stop", "restart")
MAX_LAST = 1000


def status_document(paths: Paths) -> dict[str, Any]:
    """`status --json`: every machine's agents (a host that cannot report says so in the
    document's `hosts`)."""
    from mosaic.hosts.status import document

    doc, _ = document(paths, None)
    return doc


def check_agent(paths: Paths, name: str) -> None:
    """An unknown name is a usage error naming the known agents (as on the command line)."""
    from mosaic.config.load import load

    load(paths.roster, cache_dir=paths.run).agent(name)


def event_lines(
    paths: Paths,
    since: str | None = None,
    agent: str | None = None,
    types: tuple[str, ...] = (),
    last: int | None = None,
) -> list[str]:
    """`events --json [AGENT] [--since S] [--type T]...`, optionally only the newest `last`:
    the same lines, assembled by the same query; with hosts in the roster every machine's,
    merged and tagged with `host`."""
    import time

    from mosaic.config.eventtypes import NAMES
    from mosaic.config.load import load
    from mosaic.store import db, events
    from mosaic.store.eventlines import since_arg

    for t in types:
        if t not in NAMES:
            raise UsageError(f"unknown event type {t!r}; known types: {', '.join(NAMES)}")
    roster = load(paths.roster, cache_dir=paths.run)
    if agent is not None:
        roster.agent(agent)
    if last is not None:
        last = min(max(1, last), MAX_LAST)
    if roster.hosts:
        return _merged_lines(paths, roster, since, agent, tuple(dict.fromkeys(types)), last)
    after, since_t = 0, None
    if since is not None:
        parsed = since_arg(since, time.time())
        if parsed is None:
            raise UsageError(f"since={since!r}: give a seq (1234) or a duration (30s, 10m, 2h)")
        after, since_t = parsed
    query = events.Query(after, events.iso(since_t) if since_t is not None else None,
                         tuple(dict.fromkeys(types)), agent)  # fmt: skip
    if not paths.db.exists():
        return []
    with db.opened(paths.db) as conn:
        top = events.last_seq(conn)
        if last is not None:
            start = events.newest_start(conn, query, last)
            query = events.Query(max(query.after, start), query.since_ts, query.types, agent)
        return [line for _, line in events.json_lines(conn, query, top)]


def _merged_lines(
    paths: Paths,
    roster: Roster,
    since: str | None,
    agent: str | None,
    types: tuple[str, ...],
    last: int | None,
) -> list[str]:
    """Every machine's log read at once (`hosts.eventfeed`, as `events` does); a host that
    cannot be read is left out (the status document names it)."""
    from mosaic.hosts import eventfeed
    from mosaic.hosts.eventmerge import parse_since

    parts = eventfeed.parts(roster, agent, ())
    query = eventfeed.Query(parse_since(since, eventfeed.machines(roster)), types, agent)
    lines, _, _ = eventfeed.history(paths, parts, query)
    return [ln.json() for ln in (lines[-last:] if last is not None else lines)]


def replay_lines(paths: Paths, marks: Mapping[str, int], last: int) -> list[tuple[str, int, str]]:
    """What a page reconnecting to the stream missed: the events after each machine's seq
    in `marks` (a machine not named, or no longer in the roster, is left out: nothing of
    it was seen), the newest `last`, in history order, as (machine, seq, line). A host
    that cannot be read is left out, as in `event_lines`."""
    import json

    from mosaic.config.load import load
    from mosaic.config.names import LOCAL_HOST
    from mosaic.hosts import eventfeed
    from mosaic.hosts.eventmerge import Since

    roster = load(paths.roster, cache_dir=paths.run)
    if not roster.hosts:
        if LOCAL_HOST not in marks:
            return []
        lines = event_lines(paths, str(marks[LOCAL_HOST]), last=last)
        return [(LOCAL_HOST, int(json.loads(line)["seq"]), line) for line in lines]
    known = eventfeed.machines(roster)
    named = {m: seq for m, seq in marks.items() if m in known}
    if not named:
        return []
    parts = eventfeed.parts(roster, None, tuple(named))
    found, _, _ = eventfeed.history(paths, parts, eventfeed.Query(Since(named), (), None))
    return [(ln.host, ln.seq, ln.json()) for ln in found[-last:]]


def screen(paths: Paths, name: str) -> dict[str, Any]:
    """What `capture AGENT` shows, with the terminal's colours as HTML (`sgr.to_html`). An
    agent on another machine is asked through `capture --escapes` there."""
    from mosaic.config.load import load
    from mosaic.fleet import open_fleet
    from mosaic.hosts import route
    from mosaic.tmux.panes import capture_many, list_panes

    roster = load(paths.roster, cache_dir=paths.run)
    host = route.remote_for(paths, roster, name)
    if host is not None:
        from mosaic.web.hostfeed import remote_screen

        return remote_screen(host, name)
    fleet = open_fleet(paths, roster=roster)
    pane = (list_panes(fleet.tmux) or {}).get(name)
    if pane is None:
        raise OperationFailed(f"agent {name} is not running (no session)")
    text = capture_many(fleet.tmux, [pane.id], escapes=True).get(pane.id, "")
    return screen_document(name, text, pane.dead, pane.cursor_x, pane.cursor_y)


def screen_document(
    name: str, captured: str, dead: bool, cursor_x: int, cursor_y: int
) -> dict[str, Any]:
    """One screen as the API and the stream carry it."""
    return {
        "agent": name,
        "dead": dead,
        "cursor": [cursor_x, cursor_y],
        "text": sgr.text_of(sgr.visible(captured)),
        "html": sgr.to_html(captured),
    }


def send(paths: Paths, name: str, message: str, timeout: float) -> dict[str, Any]:
    """`send AGENT MESSAGE --json`: typed with proof, on whichever machine the agent is."""
    from mosaic.hosts import sending
    from mosaic.send import delivery

    delivery.check_message(message)
    return sending.results_json(sending.send_named(paths, [name], message, timeout, True))


QUEUE_AVAILABLE = True
"""Whether `queue` can store messages (the page shows its "queue" choice only then)."""


def queue(paths: Paths, name: str, message: str) -> dict[str, Any]:
    """`send --queue AGENT MESSAGE --json`: the message waits in its agent's machine's outbox
    until the agent can take it (docs/hosts.md, "Outbox"); the document the command prints."""
    from mosaic import outbox
    from mosaic.config.load import load
    from mosaic.hosts import outboxing
    from mosaic.send import delivery

    delivery.check_message(message)
    roster = load(paths.roster, cache_dir=paths.run)
    roster.agent(name)  # an unknown agent is a usage error: nothing stored
    if not roster.hosts:
        ids = outbox.enqueue(paths, [name], message)
        return {"messages": [m.as_json() for m in outbox.get(paths, ids)]}
    done = outboxing.enqueue(paths, roster, [name], message)
    for error in done.errors:
        raise error  # one agent, so one machine: its failure is the answer
    return {"messages": done.rows}


def lifecycle(paths: Paths, name: str, action: Lifecycle) -> dict[str, Any]:
    """`start|stop|restart AGENT`, on whichever machine it is, with the report lines the
    command prints."""
    from mosaic.hosts import lifecycle as machines
    from mosaic.hosts import route

    done = machines.run(paths, name, action)
    route.raise_failures(done)
    lines = [line for d in done for line in d.value or []]
    return {"agent": name, "action": action, "ok": True, "lines": lines}


def approve(paths: Paths, name: str, deny: bool) -> dict[str, Any]:
    """`approve AGENT [--deny] --json`, on whichever machine the agent is."""
    from mosaic.hosts.approving import approve_named
    from mosaic.send.approve import DEFAULT_TIMEOUT_S

    doc, _ = approve_named(paths, name, deny, DEFAULT_TIMEOUT_S)
    return doc
