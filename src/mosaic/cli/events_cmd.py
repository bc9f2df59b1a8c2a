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

from mosaic.cli.common import paths_of
from mosaic.errors import UsageError

if TYPE_CHECKING:
    import sqlite3

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


def human(event: Event) -> str:
    fields = " ".join(
        f"{k}={v if isinstance(v, int | float | str) else json.dumps(v, ensure_ascii=False)}"
        for k, v in event.fields.items()
    )
    who = event.agent or "-"
    return f"{event.ts}  {event.seq:>7}  {who:<12} {event.type:<17} {fields}".rstrip()


@click.command("events", help=HELP, short_help="Print (and follow) the fleet's events.")
@click.argument("agent", required=False)
@click.option("--since", "since", metavar="SEQ|DURATION", help="After this seq, or this recent.")
@click.option("--type", "types", multiple=True, metavar="T", help="Only this type (repeatable).")
@click.option("--follow", "-f", "follow", is_flag=True, help="Keep printing new events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def events_cmd(
    ctx: click.Context,
    agent: str | None,
    since: str | None,
    types: tuple[str, ...],
    follow: bool,
    as_json: bool,
) -> None:
    from mosaic.config.eventtypes import NAMES
    from mosaic.store import db, events

    paths = paths_of(ctx)
    for t in types:
        if t not in NAMES:
            raise UsageError(f"unknown event type {t!r}; known types: {', '.join(NAMES)}")
    if agent is not None:
        from mosaic.config.load import load

        load(paths.roster, cache_dir=paths.run).agent(agent)
    after, since_t = parse_since(since, time.time())
    query = events.Query(
        after=after,
        since_ts=events.iso(since_t) if since_t is not None else None,
        types=tuple(dict.fromkeys(types)),
        agent=agent,
    )
    if not follow and not paths.db.exists():
        return
    stopping: list[int] = []
    if follow:
        # From the start: an interrupt that comes while the history prints ends as cleanly.
        def stop(signum: int, frame: FrameType | None) -> None:
            stopping.append(signum)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
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
                _follow(conn, new, as_json, lambda: bool(stopping))
    except BrokenPipeError:
        # The reader went away (`| head`): not an error. Keep the interpreter's own final
        # flush from failing on the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


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
