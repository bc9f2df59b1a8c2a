"""`mosaic fleet outbox`: list, cancel and retry queued messages; and how `send --queue`
reports them. The outbox itself is `mosaic.outbox`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from mosaic.cli.common import echo_json, paths_of
from mosaic.cli.completion import complete_agents
from mosaic.errors import ExitCode, UsageError

if TYPE_CHECKING:
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
    if args[:1] and args[0] in ACTIONS:
        if everything:
            raise UsageError(f"--all does not go with {args[0]}")
        ids = _ids(args[1:], args[0])
        act = outbox.cancel if args[0] == "cancel" else outbox.retry
        changes = act(paths, ids)
        ctx.exit(_report(changes, outbox.get(paths, ids), as_json))
    if len(args) > 1:
        raise UsageError("give at most one AGENT (or cancel ID... / retry ID...)")
    agent = None
    if args:
        from mosaic.config.load import load

        agent = load(paths.roster, cache_dir=paths.run).agent(args[0]).name
    found = outbox.messages(paths, agent, everything) if paths.db.exists() else []
    if as_json:
        echo_json({"messages": [m.as_json() for m in found]})
        return
    if not found:
        click.echo("no messages" if everything else "no messages waiting")
        return
    click.echo(table(found))


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
    from mosaic.store.eventlines import iso
    from mosaic.store.outboxrows import first_line

    rows = [("ID", "AGENT", "STATE", "TRIES", "QUEUED", "DELIVERED", "TEXT")]
    reasons: dict[int, str] = {}
    for m in messages:
        text = printable(first_line(m.text))
        if len(text) > TEXT_WIDTH:
            text = text[: TEXT_WIDTH - 1] + "…"
        delivered = _when(iso(m.delivered_at)) if m.delivered_at is not None else "-"
        rows.append((str(m.id), m.agent, str(m.state), str(m.attempts),
                     _when(iso(m.queued_at)), delivered, text))  # fmt: skip
        if m.reason:
            reasons[len(rows) - 1] = printable(m.reason)
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


def queued_lines(messages: Sequence[Message]) -> list[str]:
    from mosaic.store.outboxrows import queued_line

    return [queued_line(m.id, m.agent) for m in messages]


def waited(messages: Sequence[Message], timeout: float) -> tuple[list[str], int]:
    """`send --queue --wait`'s lines and exit status: 0 when every message was delivered,
    3 when one is still waiting at the timeout (it stays queued), 1 when one failed,
    expired or was cancelled; the worst wins (1 > 3 > 0)."""
    from mosaic.outbox import State
    from mosaic.send.outcome import SEVERITY

    lines, codes = [], [ExitCode.OK]
    for m in messages:
        if m.state is State.DELIVERED:
            plural = "" if m.attempts == 1 else "s"
            lines.append(f"{m.agent}: delivered #{m.id} ({m.attempts} attempt{plural})")
        elif m.state in (State.QUEUED, State.DELIVERING):
            codes.append(ExitCode.NOT_ACCEPTED)
            lines.append(f"{m.agent}: {m.state} #{m.id} (not delivered within {timeout:g}s; "
                         "it stays queued)")  # fmt: skip
        else:
            codes.append(ExitCode.FAILED)
            why = printable(m.reason or "(no reason recorded)")
            lines.append(f"{m.agent}: {m.state} #{m.id}: {why}")
    return lines, int(max(codes, key=SEVERITY.index))
