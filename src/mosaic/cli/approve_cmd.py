"""`mosaic fleet approve`: answer the dialog an agent waits on; the work is in
`mosaic.send.approve`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mosaic.cli.common import echo_json, paths_of
from mosaic.cli.completion import complete_agents

if TYPE_CHECKING:
    from mosaic.hosts.remote import Remote

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
    from mosaic.config.load import load
    from mosaic.hosts import route

    paths = paths_of(ctx)
    roster = load(paths.roster, cache_dir=paths.run)
    host = route.remote_for(paths, roster, agent)
    if host is not None:
        doc, code = _remote(host, agent, deny, timeout)
    else:
        from mosaic.fleet import open_fleet
        from mosaic.send.approve import approve

        fleet = open_fleet(paths, roster=roster)
        runtime = roster.runtime_for(roster.agent(agent))
        res = approve(fleet.tmux, paths, agent, runtime, deny, timeout)
        doc, code = res.as_json(), res.exit_code
    if roster.hosts:
        from mosaic.config.names import LOCAL_HOST

        doc["host"] = LOCAL_HOST if host is None else host.name
    if as_json:
        echo_json(doc)
    else:
        keys = " ".join(doc.get("keys") or []) or "nothing"
        click.echo(f"{agent}: {doc.get('outcome')} (typed {keys}, {doc.get('seconds', 0):.2f}s)")
        if not doc.get("ok"):
            for line in doc.get("evidence") or []:
                click.echo(f"  | {line}")
    ctx.exit(code)


def _remote(host: Remote, agent: str, deny: bool, timeout: float) -> tuple[dict[str, Any], int]:
    """The host's own `approve --json`: its document and exit code (0, 1 or 3); anything
    else is the host's error, as a HostError naming it."""
    from mosaic.hosts.remote import QUICK_S, HostError

    args = ["approve", agent, "--json", "--timeout", repr(timeout), *(["--deny"] if deny else [])]
    # The host waits for the agent's send lock first (a send in progress), as `send` does.
    doc, reply = host.json(args, timeout=timeout * 3 + QUICK_S, ok=(0, 1, 3))
    if not isinstance(doc, dict) or "outcome" not in doc:
        raise HostError(host.name, f"host {host.name}: approve gave no answer for {agent}")
    return doc, reply.code
