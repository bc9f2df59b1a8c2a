"""`mosaic fleet approve`: answer the dialog an agent waits on; the work is in
`mosaic.send.approve`."""

from __future__ import annotations

import click

from mosaic.cli.common import echo_json, paths_of

HELP = """Answer the approval dialog AGENT waits on: approve once (never "always"), or --deny.

Keys are typed only when the agent's screen shows an approval dialog; otherwise nothing is
typed and the answer is `not_awaiting` (exit 1). The answer is `approved`/`denied` (exit 0)
only when the dialog left the screen, else `not_confirmed` (exit 3). It takes the same
per-agent lock as `send`, so it never interleaves with a message being typed.
"""


@click.command("approve", help=HELP, short_help="Approve (or deny) the dialog an agent waits on.")
@click.argument("agent")
@click.option("--deny", is_flag=True, help="Refuse instead of approving.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the dialog to leave the screen.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def approve_cmd(
    ctx: click.Context, agent: str, deny: bool, timeout: float, as_json: bool
) -> None:
    from mosaic.fleet import open_fleet
    from mosaic.send.approve import approve

    fleet = open_fleet(paths_of(ctx))
    chosen = fleet.roster.agent(agent)
    res = approve(fleet.tmux, fleet.paths, agent, fleet.roster.runtime_for(chosen), deny, timeout)
    if as_json:
        echo_json(res.as_json())
    else:
        keys = " ".join(res.keys) or "nothing"
        click.echo(f"{agent}: {res.answer} (typed {keys}, {res.seconds:.2f}s)")
        if not res.ok:
            for line in res.evidence:
                click.echo(f"  | {line}")
    ctx.exit(res.exit_code)
