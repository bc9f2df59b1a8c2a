"""Fleet lifecycle and observation commands: start, stop, restart, status, capture,
watch, attach, logs."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from mosaic.cli.common import echo_json, paths_of
from mosaic.cli.completion import complete_agents
from mosaic.errors import OperationFailed

if TYPE_CHECKING:
    from mosaic.fleet import Fleet
    from mosaic.tmux.panes import Pane

agent_arg = click.argument("agent", required=False, shell_complete=complete_agents)


def _lifecycle(ctx: click.Context, agent: str | None, action: str) -> None:
    """Run one supervisor action on AGENT or the whole fleet and print its report."""
    from mosaic import supervise
    from mosaic.fleet import open_fleet

    fleet = open_fleet(paths_of(ctx), deciding=action != "stop")
    agents = fleet.roster.select(agent)
    if action == "start":
        lines = supervise.start(fleet, agents)
    elif action == "stop":
        lines = supervise.stop(fleet, agents, whole=agent is None)
    else:
        lines = supervise.restart(fleet, agents, whole=agent is None)
    for line in lines:
        click.echo(line)


@click.command("start")
@agent_arg
@click.pass_context
def start_cmd(ctx: click.Context, agent: str | None) -> None:
    """Start the holder and AGENT (or every agent); running agents are left alone."""
    _lifecycle(ctx, agent, "start")


@click.command("stop")
@agent_arg
@click.pass_context
def stop_cmd(ctx: click.Context, agent: str | None) -> None:
    """Stop AGENT, or every agent and then the holder."""
    _lifecycle(ctx, agent, "stop")


@click.command("restart")
@agent_arg
@click.pass_context
def restart_cmd(ctx: click.Context, agent: str | None) -> None:
    """Restart AGENT (or every agent, starting stopped ones) under the restart lock."""
    _lifecycle(ctx, agent, "restart")


@click.command("status")
@agent_arg
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def status_cmd(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """Show the supervisor, the holder and each agent's state and activity."""
    from mosaic.agents import status

    doc = status.fleet_status(paths_of(ctx), agent)
    if as_json:
        echo_json(doc)
        return
    from mosaic.cli.render import status_table

    status_table(doc)


@click.command("capture")
@click.argument("agent", shell_complete=complete_agents)
@click.option("-n", "lines", type=click.IntRange(min=1), default=None,
              help="Only the last LINES lines (scrollback included).")  # fmt: skip
@click.pass_context
def capture_cmd(ctx: click.Context, agent: str, lines: int | None) -> None:
    """Print what AGENT's screen shows now."""
    fleet, pane = _session_of(ctx, agent)
    args = ["capture-pane", "-p", "-t", pane.id]
    if lines is not None:
        args += ["-S", f"-{lines}"]
    text = fleet.tmux.out(*args).rstrip("\n").split("\n")
    while text and not text[-1].strip():
        text.pop()
    if lines is not None:
        text = text[-lines:]
    click.echo("\n".join(text))


def _session_of(ctx: click.Context, agent: str) -> tuple[Fleet, Pane]:
    """The roster agent's pane; unknown agents are usage errors, absent sessions failures."""
    from mosaic.fleet import open_fleet
    from mosaic.tmux.panes import list_panes

    fleet = open_fleet(paths_of(ctx))
    fleet.roster.agent(agent)
    pane = (list_panes(fleet.tmux) or {}).get(agent)
    if pane is None:
        raise OperationFailed(f"agent {agent} is not running (no session)")
    return fleet, pane


def _attach(ctx: click.Context, agent: str, read_only: bool) -> None:
    fleet, _ = _session_of(ctx, agent)
    if not sys.stdin.isatty():
        raise OperationFailed("attaching needs a terminal; use `capture` to read the screen")
    argv = fleet.tmux.argv("attach-session", *(["-r"] if read_only else []), "-t", f"={agent}")
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)


@click.command("watch")
@click.argument("agent", shell_complete=complete_agents)
@click.pass_context
def watch_cmd(ctx: click.Context, agent: str) -> None:
    """Attach to AGENT read-only: you see it work and cannot type into it."""
    _attach(ctx, agent, read_only=True)


@click.command("attach")
@click.argument("agent", shell_complete=complete_agents)
@click.pass_context
def attach_cmd(ctx: click.Context, agent: str) -> None:
    """Attach to AGENT interactively (detach with the tmux prefix + d)."""
    _attach(ctx, agent, read_only=False)


@click.command("logs")
@click.argument("agent", shell_complete=complete_agents)
@click.option("-f", "follow", is_flag=True, help="Keep printing new output.")
@click.option("-n", "lines", type=click.IntRange(min=0), default=100, show_default=True,
              help="Lines of history to print first (0 = all).")  # fmt: skip
@click.pass_context
def logs_cmd(ctx: click.Context, agent: str, follow: bool, lines: int) -> None:
    """Print AGENT's transcript (terminal control sequences removed)."""
    from mosaic.config.load import load
    from mosaic.tmux import transcript

    paths = paths_of(ctx)
    load(paths.roster, cache_dir=paths.run).agent(agent)
    log = paths.agent_log(agent)
    if not transcript.exists(log) and not follow:
        raise OperationFailed(f"agent {agent} has no transcript yet ({log})")
    for line in transcript.tail(log, lines):
        click.echo(line)
    if follow:
        for chunk in transcript.follow(log):
            click.echo(chunk, nl=False)
