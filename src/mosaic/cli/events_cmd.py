"""`mosaic fleet events`: the event log, oldest first, optionally followed live."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import click

from mosaic.cli.common import paths_of, reader_gone, roster_if_needed
from mosaic.cli.completion import complete_agents, complete_hosts
from mosaic.errors import UsageError

if TYPE_CHECKING:
    import sqlite3

    from mosaic.config.paths import Paths
    from mosaic.config.roster import Roster
    from mosaic.hosts.eventmerge import Line
    from mosaic.store.events import Event, Query

HELP = """Print the fleet's events (AGENT's only, when given), oldest first.

\b
  mosaic fleet events                      everything the log keeps
  mosaic fleet events coder0 --since 2h    one agent, the last two hours
  mosaic fleet events --type awaiting_approval --type failed --follow --json

--since takes a seq (events after it: resume from the last seq you saw) or a duration
(30s, 10m, 2h, 1d). --follow keeps printing new events until interrupted (exit 0 on
Ctrl-C or SIGTERM); it reads the log itself, so a watcher restart loses or repeats
nothing. --json prints one JSON object per line (JSON Lines), flushed as written:
{"seq", "ts", "agent", "type", ...the type's fields}.

With hosts in the roster, every machine's log is read and each line carries "host"
(local for this one); a seq is per machine, so --since also takes HOST:SEQ pairs
(local:1234,gpu1:88) to resume each machine's log; --host limits it to some machines.
"""

def parse_since(text: str | None, now: float) -> tuple[int, float | None]:
    """(after seq, since time) from `--since`: a seq or a duration like 10m, 2h, 1h30m."""
    from mosaic.store.eventlines import since_arg

    if text is None:
        return 0, None
    parsed = since_arg(text, now)
    if parsed is None:
        raise UsageError(f"--since {text!r}: give a seq (1234) or a duration (30s, 10m, 2h, 1d)")
    return parsed


def human(event: Event, host: str | None = None) -> str:
    fields = " ".join(
        f"{k}={v if isinstance(v, int | float | str) else json.dumps(v, ensure_ascii=False)}"
        for k, v in event.fields.items()
    )
    who = event.agent or "-"
    where = "" if host is None else f"{host:<10} "
    return f"{event.ts}  {where}{event.seq:>7}  {who:<12} {event.type:<17} {fields}".rstrip()


@click.command("events", help=HELP, short_help="Print (and follow) the fleet's events.")
@click.argument("agent", required=False, shell_complete=complete_agents)
@click.option("--since", "since", metavar="SEQ|HOST:SEQ,...|DURATION",
              help="After this seq (of each host), or this recent.")  # fmt: skip
@click.option("--type", "types", multiple=True, metavar="T", help="Only this type (repeatable).")
@click.option("--host", "only", multiple=True, metavar="HOST", shell_complete=complete_hosts,
              help="Only this machine's events (repeatable; local is this one).")  # fmt: skip
@click.option("--follow", "-f", "follow", is_flag=True, help="Keep printing new events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def events_cmd(
    ctx: click.Context,
    agent: str | None,
    since: str | None,
    types: tuple[str, ...],
    only: tuple[str, ...],
    follow: bool,
    as_json: bool,
) -> None:
    from mosaic.config.eventtypes import NAMES
    from mosaic.config.names import LOCAL_HOST

    paths = paths_of(ctx)
    for t in types:
        if t not in NAMES:
            raise UsageError(f"unknown event type {t!r}; known types: {', '.join(NAMES)}")
    roster = roster_if_needed(paths, agent)
    if agent is not None and roster is not None:
        roster.agent(agent)
    if roster is not None and roster.hosts:
        _merged(paths, roster, agent, since, tuple(dict.fromkeys(types)), only, follow, as_json)
        return
    for name in only:
        if name != LOCAL_HOST:
            raise UsageError(f"unknown host {name!r}; known: {LOCAL_HOST}")
    _one_machine(paths, agent, since, types, follow, as_json)


def _one_machine(
    paths: Paths,
    agent: str | None,
    since: str | None,
    types: tuple[str, ...],
    follow: bool,
    as_json: bool,
) -> None:
    from mosaic.config.names import LOCAL_HOST
    from mosaic.store import db, events

    if since is not None and ":" in since:
        from mosaic.hosts.eventmerge import parse_since as parse_host_since

        since = str(parse_host_since(since, [LOCAL_HOST]).seqs[LOCAL_HOST])
    after, since_t = parse_since(since, time.time())
    query = events.Query(
        after=after,
        since_ts=events.iso(since_t) if since_t is not None else None,
        types=tuple(dict.fromkeys(types)),
        agent=agent,
    )
    if not follow and not paths.db.exists():
        return
    stopping = _stop_on_signals() if follow else []
    out = sys.stdout
    try:
        with db.opened(paths.db) as conn:
            top = events.last_seq(conn)
            if as_json:
                lines = [line for _, line in events.json_lines(conn, query, top)]
            else:
                lines = [human(e) for e in events.since(conn, query, top)]
            if lines:
                out.write("\n".join(lines) + "\n")
            out.flush()
            if follow:
                new = events.Query(max(top, after), query.since_ts, query.types, agent)
                # Also ends when the reader is gone (a controller's SSH session that left).
                _follow(conn, new, as_json, lambda: bool(stopping) or reader_gone())
    except BrokenPipeError:
        _reader_left()


def _reader_left() -> None:
    """The reader went away (`| head`): not an error. Keep the interpreter's own final
    flush from failing on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _stop_on_signals() -> list[int]:
    """SIGINT and SIGTERM end a follow with exit 0; from the start, so an interrupt that
    comes while the history prints ends as cleanly."""
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    return stopping


def _merged(
    paths: Paths,
    roster: Roster,
    agent: str | None,
    since: str | None,
    types: tuple[str, ...],
    only: tuple[str, ...],
    follow: bool,
    as_json: bool,
) -> None:
    """Every machine's log as one (docs/hosts.md, "Events")."""
    from mosaic.hosts import eventfeed, route
    from mosaic.hosts.eventmerge import parse_since as parse_host_since

    parts = eventfeed.parts(roster, agent, only)
    query = eventfeed.Query(parse_host_since(since, eventfeed.machines(roster)), types, agent)
    stopping = _stop_on_signals() if follow else []
    show = _line_json if as_json else _line_human
    try:
        lines, resume, errors = eventfeed.history(paths, parts, query)
        if lines:
            sys.stdout.write("\n".join(show(ln) for ln in lines) + "\n")
        sys.stdout.flush()
        if not follow:
            route.raise_errors(errors)
            return
        # A machine whose history could not be read is followed from what was asked (its
        # history comes with its first answer); its follower says so while it cannot.

        def emit(line: Line) -> None:
            sys.stdout.write(show(line) + "\n")
            sys.stdout.flush()

        def notice(text: str) -> None:
            click.echo(text, err=True)

        follower = eventfeed.Follow(paths, parts, query, resume)
        follower.run(emit, notice, lambda: bool(stopping) or reader_gone())
    except BrokenPipeError:
        _reader_left()


def _line_json(line: Line) -> str:
    return line.json()


def _line_human(line: Line) -> str:
    from mosaic.store.events import Event

    fields = {k: v for k, v in line.event.items() if k not in ("seq", "ts", "agent", "type")}
    event = Event(line.seq, line.ts, line.agent, str(line.event.get("type", "")), fields)
    return human(event, line.host)


def _follow(
    conn: sqlite3.Connection, query: Query, as_json: bool, stopped: Callable[[], bool]
) -> None:
    from mosaic.store import events

    def read(c: sqlite3.Connection, q: Query, upto: int) -> list[str]:
        if as_json:
            return [line for _, line in events.json_lines(c, q, upto)]
        return [human(e) for e in events.since(c, q, upto)]

    for batch in events.follow(conn, query, stopped, read):
        for line in batch:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
