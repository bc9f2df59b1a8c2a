"""`mosaic fleet send`: argument handling and output; delivery lives in `mosaic.send`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mosaic.cli.common import echo_json, paths_of
from mosaic.cli.completion import complete_agents
from mosaic.errors import UsageError

if TYPE_CHECKING:
    from mosaic.config.roster import Roster

HELP = """Type MESSAGE into each AGENT's input and verify that the agent took it.

\b
  mosaic fleet send coder0 'fix the failing test'
  mosaic fleet send coder0 coder1 - < prompt.md     (- reads the message from stdin)
  mosaic fleet send --all -- '-v means verbose'     (-- before a message starting with -)

The last argument is the message, every argument before it an agent (with --all, the only
argument is the message). The text is pasted verbatim as one message, then the runtime's
submit key is pressed; the submit key (never the text) is pressed again while the message
still sits in the input, until --timeout.

\b
Outcomes, one per agent:
  accepted      the screen proves the agent took it (the text left the input,
                the agent went busy, or asked for approval)
  queued        a busy agent queued it (counts as accepted)
  not_accepted  typed, but no proof by the timeout (exit 3)
  awaiting_approval  the agent waits for the operator (an approval or trust
                dialog): nothing was typed, answered at once (exit 3); see
                `mosaic fleet approve`
  not_running   no session, the process exited, or the runtime is not in the
                foreground (exit 1); then nothing is typed into ANY agent, and the
                other agents are reported as skipped
  unverified    with --no-verify: pasted and submitted once, screen not checked

Agents are served in parallel; the exit code is the worst of them, ranked
1 (not running) > 3 (not accepted, awaiting approval) > 0; usage errors exit 2
before anything is typed.
The timeout counts from when this send gets the agent's send lock (another send to the
same agent finishes first; sends to one agent never interleave).

\b
With --queue nothing is typed now: one message per agent goes into the outbox, whatever
the agents are doing (stopped, busy, awaiting approval, not yet started), and their ids
are printed at once (exit 0). The watcher delivers each agent's messages in order, one
at a time, when the agent runs and is idle, exactly once; see `mosaic fleet outbox`.
  mosaic fleet send --queue coder0 'run the tests again'
  mosaic fleet send --queue --wait --timeout 600 coder0 - < task.md
--wait then blocks until each is delivered (exit 0) or the --timeout (exit 3; it stays
queued); a message that failed, expired or was cancelled meanwhile is exit 1.
With hosts in the roster each message is stored on its agent's machine (that host's
watcher delivers it); a host's message ids are HOST:N (gpu1:17).
"""


@click.command("send", help=HELP, short_help="Type a message into agents and verify it.")
@click.argument("args", nargs=-1, metavar="(AGENT... | --all) (MESSAGE | -)",
                shell_complete=complete_agents)  # fmt: skip
@click.option("--all", "all_agents", is_flag=True, help="Send to every agent in the roster.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait for proof of acceptance, per agent.",
)
@click.option("--no-verify", is_flag=True, help="Paste and submit once; do not check the screen.")
@click.option("--queue", is_flag=True,
              help="Store in the outbox for the watcher to deliver; print the ids at once.")
@click.option("--wait", is_flag=True,
              help="With --queue: block until delivered, or exit 3 at the --timeout.")
@click.option("--ttl", metavar="DURATION",
              help="With --queue: expire if not delivered within DURATION (30s, 10m, 2h, 1d).")
@click.option("--max-attempts", type=click.IntRange(min=1), default=None,
              help="With --queue: attempts not accepted before it fails (default 5).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def send_cmd(
    ctx: click.Context,
    args: tuple[str, ...],
    all_agents: bool,
    timeout: float,
    no_verify: bool,
    queue: bool,
    wait: bool,
    ttl: str | None,
    max_attempts: int | None,
    as_json: bool,
) -> None:
    if not queue:
        given = [("--wait", wait), ("--ttl", ttl is not None),
                 ("--max-attempts", max_attempts is not None)]  # fmt: skip
        for flag, used in given:
            if used:
                raise UsageError(f"{flag} goes with --queue")
    elif no_verify:
        raise UsageError("--no-verify does not go with --queue (the outbox always verifies)")
    agents, raw = split_args(args, all_agents)
    message = read_message(raw)
    if queue:
        _queue(ctx, agents, all_agents, message, ttl, max_attempts, wait, timeout, as_json)

    from mosaic.config.load import load
    from mosaic.hosts import sending
    from mosaic.send.outcome import Outcome, exit_code

    paths = paths_of(ctx)
    if all_agents:
        agents = load(paths.roster, cache_dir=paths.run).names
        if not agents:
            raise UsageError("the roster has no agents")
    sent = sending.send_named(paths, agents, message, timeout, not no_verify)
    results = [r for r, _ in sent]
    if as_json:
        echo_json(sending.results_json(sent))
    else:
        for r in results:
            plural = "" if r.attempts == 1 else "s"
            click.echo(f"{r.agent}: {r.outcome} ({r.attempts} attempt{plural}, {r.seconds:.2f}s)")
            if r.outcome not in (Outcome.ACCEPTED, Outcome.QUEUED):
                for line in r.evidence:
                    click.echo(f"  | {line}")
    ctx.exit(exit_code(results))


def _queue(ctx: click.Context, agents: list[str], all_agents: bool, message: str,
           ttl: str | None, max_attempts: int | None, wait: bool, timeout: float,
           as_json: bool) -> None:  # fmt: skip
    """`send --queue`: store, print the ids (or, with --wait, how each ended)."""
    from mosaic import outbox
    from mosaic.cli.outbox_cmd import queued_lines, waited
    from mosaic.config.load import load
    from mosaic.store.outboxrows import parse_ttl

    seconds = None
    if ttl is not None:
        seconds = parse_ttl(ttl)
        if seconds is None:
            raise UsageError(
                f"--ttl {ttl!r} is not a duration: 30s, 10m, 2h, 1d, 1h30m or whole seconds"
            )
    paths = paths_of(ctx)
    roster = load(paths.roster, cache_dir=paths.run)
    if all_agents:
        agents = roster.names
        if not agents:
            raise UsageError("the roster has no agents")
    names = [roster.agent(name).name for name in agents]  # unknown names: nothing stored
    if roster.hosts:
        _queue_across_hosts(ctx, roster, names, message, seconds, max_attempts,
                            timeout if wait else None, as_json)  # fmt: skip
    attempts = outbox.DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts
    ids = outbox.enqueue(paths, names, message, seconds, attempts)
    if not wait:
        stored = [m.as_json() for m in outbox.get(paths, ids)]
        if as_json:
            echo_json({"messages": stored})
        else:
            click.echo("\n".join(queued_lines(stored)))
        ctx.exit(0)
    final = [m.as_json() for m in outbox.wait(paths, ids, timeout)]
    lines, code = waited(final, timeout)
    if as_json:
        echo_json({"messages": final})
    else:
        click.echo("\n".join(lines))
    ctx.exit(code)


def _queue_across_hosts(ctx: click.Context, roster: Roster, names: list[str], message: str,
                        ttl: int | None, max_attempts: int | None, wait: float | None,
                        as_json: bool) -> None:  # fmt: skip
    """Each message stored on its agent's machine (docs/hosts.md, "Outbox"); what was
    stored is printed, then each machine that failed is named on stderr (exit 1)."""
    from mosaic.cli.outbox_cmd import failures, queued_lines, waited
    from mosaic.hosts import outboxing

    done = outboxing.enqueue(paths_of(ctx), roster, names, message, ttl, max_attempts, wait)
    lines, code = waited(done.rows, wait) if wait is not None else (queued_lines(done.rows), 0)
    if as_json:
        echo_json({"messages": done.rows})
    elif lines:
        click.echo("\n".join(lines))
    ctx.exit(failures(done, code))


def split_args(args: tuple[str, ...], all_agents: bool) -> tuple[list[str], str]:
    """The last positional is the message; the ones before it are agents (none with --all)."""
    if all_agents:
        if len(args) != 1:
            raise UsageError("with --all, give exactly one argument: the MESSAGE (or -)")
        return [], args[0]
    if len(args) < 2:
        raise UsageError("give one or more AGENTs and then the MESSAGE (or -), or --all MESSAGE")
    return list(dict.fromkeys(args[:-1])), args[-1]


def read_message(raw: str) -> str:
    """`-` reads stdin as UTF-8; a message with nothing but whitespace is a usage error
    (the rule `send --queue`'s fast path shares)."""
    from mosaic.cli.quicksend import message_from

    text, error = message_from(raw)
    if error is not None:
        raise UsageError(error)
    return text
