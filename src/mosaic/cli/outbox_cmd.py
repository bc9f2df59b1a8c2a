"""`mosaic fleet outbox`: list, cancel and retry queued messages; and how `send --queue`
reports them. The outbox itself is `mosaic.outbox`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from mosaic.cli.common import echo_json, paths_of, roster_if_needed
from mosaic.cli.completion import complete_agents
from mosaic.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from mosaic.config.paths import Paths
    from mosaic.config.roster import Roster
    from mosaic.hosts.outboxing import Gathered
    from mosaic.outbox import Change, Message

HELP = """List the outbox: messages queued with `send --queue` for the watcher to deliver.

\b
  mosaic fleet outbox                 messages not yet delivered (queued, delivering)
  mosaic fleet outbox coder0 --all    every message for coder0, delivered ones included
  mosaic fleet outbox cancel 7 9      cancel queued or failed messages
  mosaic fleet outbox retry 7         queue a failed message again (fresh attempts), or try
                                      a queued one without waiting out its backoff

\b
States: queued, delivering, delivered, failed (attempts used up, the agent left the
roster, or an interrupted delivery that could not be decided: see the reason), expired
(its --ttl ran out), cancelled.

An unknown id is a usage error (exit 2) and changes nothing; a message in a state the
action does not apply to is reported and left as it is (exit 1).

With hosts in the roster every machine's outbox is listed, each message with its HOST;
a host's message ids are HOST:N (h1:17), this machine's plain numbers. A host that
cannot be reached is named on stderr (exit 1); the other machines' part still works.
"""

ACTIONS = ("cancel", "retry")
TEXT_WIDTH = 48


@click.command("outbox", help=HELP, short_help="List, cancel and retry queued messages.")
@click.argument("args", nargs=-1, metavar="[AGENT] | cancel ID... | retry ID...",
                shell_complete=complete_agents)  # fmt: skip
@click.option("--all", "everything", is_flag=True,
              help="Include delivered, failed, expired and cancelled messages.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def outbox_cmd(ctx: click.Context, args: tuple[str, ...], everything: bool, as_json: bool) -> None:
    from mosaic import outbox

    paths = paths_of(ctx)
    acting = bool(args[:1] and args[0] in ACTIONS)
    if acting and everything:
        raise UsageError(f"--all does not go with {args[0]}")
    if not acting and len(args) > 1:
        raise UsageError("give at most one AGENT (or cancel ID... / retry ID...)")
    roster = roster_if_needed(paths, None if acting or not args else args[0])
    if roster is not None and roster.hosts:
        ctx.exit(_across_hosts(paths, roster, args, acting, everything, as_json))
    if acting:
        ids = _ids(args[1:], args[0])
        act = outbox.cancel if args[0] == "cancel" else outbox.retry
        changes = act(paths, ids)
        ctx.exit(_report(changes, outbox.get(paths, ids), as_json))
    agent = None
    if args:
        assert roster is not None
        agent = roster.agent(args[0]).name
    found = outbox.messages(paths, agent, everything) if paths.db.exists() else []
    if as_json:
        echo_json({"messages": [m.as_json() for m in found]})
        return
    if not found:
        click.echo("no messages" if everything else "no messages waiting")
        return
    click.echo(table(found))


def _across_hosts(paths: Paths, roster: Roster, args: tuple[str, ...], acting: bool,
                  everything: bool, as_json: bool) -> int:  # fmt: skip
    """Every machine's outbox (docs/hosts.md, "Outbox"): what answered is printed, then
    each machine that failed is named on stderr."""
    from mosaic.hosts import outboxing

    if acting:
        refs = outboxing.parse_refs(args[1:], outboxing.machines(roster), args[0])
        done = outboxing.act(paths, roster, args[0], refs)
        if as_json:
            echo_json({"messages": done.rows})
        for row in done.rows:
            if str(row["id"]) not in done.refused and not as_json:
                click.echo(printable(f"{row['agent']}: {row['state']} #{row['id']}"))
        for why in done.refused.values():
            click.echo(printable(why), err=True)
        return failures(done)
    agent = roster.agent(args[0]).name if args else None
    done = outboxing.listing(paths, roster, agent, everything)
    if as_json:
        echo_json({"messages": done.rows})
    elif done.rows:
        click.echo(table_of(done.rows, hosts=True))
    elif not done.errors:
        click.echo("no messages" if everything else "no messages waiting")
    return failures(done)


def failures(done: Gathered, base: int = ExitCode.OK) -> int:
    """Each machine that failed, named on stderr; the exit status of the whole."""
    for error in done.errors:
        click.echo(error.message, err=True)
    return done.exit_code(base)


def _ids(words: Sequence[str], action: str) -> list[int]:
    if not words:
        raise UsageError(f"give the id of each message to {action}")
    bad = [w for w in words if not w.isdigit()]
    if bad:
        raise UsageError(f"not a message id: {bad[0]!r} (ids are whole numbers)")
    return list(dict.fromkeys(int(w) for w in words))


def _report(changes: list[Change], messages: list[Message], as_json: bool) -> int:
    if as_json:
        echo_json({"messages": [m.as_json() for m in messages]})
    failed = False
    for change in changes:
        if change.error is not None:
            failed = True
            click.echo(change.error, err=True)
        elif not as_json:
            click.echo(f"{change.agent}: {change.state} #{change.id}")
    return int(ExitCode.FAILED if failed else ExitCode.OK)


def table(messages: Sequence[Message]) -> str:
    """The listing for people: one line per message, its reason under it."""
    return table_of([m.as_json() for m in messages])


def table_of(messages: Sequence[dict[str, Any]], hosts: bool = False) -> str:
    """`table` of messages as `outbox --json` shows them; `hosts`: with a HOST column."""
    head = ("ID", *(("HOST",) if hosts else ()), "AGENT", "STATE", "TRIES", "QUEUED",
            "DELIVERED", "TEXT")  # fmt: skip
    rows = [head]
    reasons: dict[int, str] = {}
    for m in messages:
        text = printable(m["first_line"])
        if len(text) > TEXT_WIDTH:
            text = text[: TEXT_WIDTH - 1] + "…"
        delivered = _when(str(m["delivered_at"])) if m["delivered_at"] is not None else "-"
        where = (str(m["host"]),) if hosts else ()
        # A host's answer is text from outside too: every cell shown harmlessly.
        shown = (str(m["id"]), *where, str(m["agent"]), str(m["state"]), str(m["attempts"]),
                 _when(str(m["queued_at"])), delivered)  # fmt: skip
        rows.append((*map(printable, shown), text))
        if m["reason"]:
            reasons[len(rows) - 1] = printable(str(m["reason"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if index in reasons:
            lines.append(f"    | {reasons[index]}")
    return "\n".join(lines)


def printable(text: str) -> str:
    """Text from outside (a message, an agent's screen) as a terminal shows it harmlessly:
    an escape sequence in a message must not drive the operator's terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _when(stamp: str) -> str:
    """ISO 8601 UTC to the second, readable: 2026-05-01 09:12:03Z."""
    return stamp[:19].replace("T", " ") + "Z"


# --- send --queue ----------------------------------------------------------------------------


def queued_lines(messages: Sequence[dict[str, Any]]) -> list[str]:
    """`send --queue`'s lines, of messages as `outbox --json` shows them."""
    from mosaic.store.outboxrows import queued_line

    return [queued_line(m["id"], m["agent"]) for m in messages]


def waited(messages: Sequence[dict[str, Any]], timeout: float) -> tuple[list[str], int]:
    """`send --queue --wait`'s lines and exit status, of messages as `outbox --json` shows
    them: 0 when every message was delivered, 3 when one is still waiting at the timeout
    (it stays queued), 1 when one failed, expired or was cancelled; the worst wins
    (1 > 3 > 0)."""
    from mosaic.outbox import State
    from mosaic.send.outcome import SEVERITY

    lines, codes = [], [ExitCode.OK]
    for m in messages:
        agent, state, ident, attempts = m["agent"], m["state"], m["id"], m["attempts"]
        if state == State.DELIVERED:
            plural = "" if attempts == 1 else "s"
            lines.append(f"{agent}: delivered #{ident} ({attempts} attempt{plural})")
        elif state in (State.QUEUED, State.DELIVERING):
            codes.append(ExitCode.NOT_ACCEPTED)
            lines.append(f"{agent}: {state} #{ident} (not delivered within {timeout:g}s; "
                         "it stays queued)")  # fmt: skip
        else:
            codes.append(ExitCode.FAILED)
            why = printable(m["reason"] or "(no reason recorded)")
            lines.append(f"{agent}: {state} #{ident}: {why}")
    return lines, int(max(codes, key=SEVERITY.index))
