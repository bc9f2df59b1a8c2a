"""`mosaic fleet send`: argument handling and output; delivery lives in `mosaic.send`."""

from __future__ import annotations

import sys

import click

from mosaic.cli.common import echo_json, paths_of
from mosaic.cli.completion import complete_agents
from mosaic.errors import UsageError

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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def send_cmd(
    ctx: click.Context,
    args: tuple[str, ...],
    all_agents: bool,
    timeout: float,
    no_verify: bool,
    as_json: bool,
) -> None:
    agents, raw = split_args(args, all_agents)
    message = read_message(raw)

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
    """`-` reads stdin as UTF-8; a message with nothing but whitespace is a usage error."""
    if raw == "-":
        data = sys.stdin.buffer.read()
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"the message on stdin is not UTF-8 ({exc.reason})") from None
    from mosaic.send.delivery import check_message

    return check_message(raw)
