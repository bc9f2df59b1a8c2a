"""`mosaic fleet approve`: answer the dialog an agent waits on; the work is in
`mosaic.send.approve` (the screen) and `mosaic.hosts.approving` (which machine)."""

from __future__ import annotations

import click

from mosaic.cli.common import echo_json, paths_of
from mosaic.cli.completion import complete_agents

HELP = """Answer the approval dialog AGENT waits on: approve once (never "always"), or --deny.

Keys are typed only when the agent's screen shows an approval dialog; otherwise nothing is
typed and the answer is `not_awaiting` (exit 1). The answer is `approved`/`denied` (exit 0)
only when the dialog left the screen, else `not_confirmed` (exit 3). It takes the same
per-agent lock as `send`, so it never interleaves with a message being typed. An agent on
another machine (roster `host:`) is answered there, with the same outcomes and exit codes.
"""


@click.command("approve", help=HELP, short_help="Approve (or deny) the dialog an agent waits on.")
@click.argument("agent", shell_complete=complete_agents)
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
    from mosaic.hosts.approving import approve_named

    doc, code = approve_named(paths_of(ctx), agent, deny, timeout)
    if as_json:
        echo_json(doc)
    else:
        keys = " ".join(doc.get("keys") or []) or "nothing"
        click.echo(f"{agent}: {doc.get('outcome')} (typed {keys}, {doc.get('seconds', 0):.2f}s)")
        if not doc.get("ok"):
            for line in doc.get("evidence") or []:
                click.echo(f"  | {line}")
    ctx.exit(code)

