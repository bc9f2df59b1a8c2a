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
    """Run one supervisor action on AGENT or the whole fleet, on every machine concerned,
    and print each machine's report (docs/hosts.md)."""
    from mosaic.hosts import lifecycle, route

    done = lifecycle.run(paths_of(ctx), agent, action)
    for d in done:
        for line in d.value or []:
            click.echo(line)
    route.raise_failures(done)


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
    from mosaic.hosts.status import document

    doc, errors = document(paths_of(ctx), agent)
    if as_json:
        for message in errors:
            click.echo(message, err=True)  # the table shows these itself
        echo_json(doc)
        return
    from mosaic.cli.render import status_table

    status_table(doc)


@click.command("capture")
@click.argument("agent", shell_complete=complete_agents)
@click.option("-n", "lines", type=click.IntRange(min=1), default=None,
              help="Only the last LINES lines (scrollback included).")  # fmt: skip
# For a controller's dashboard (docs/hosts.md, "Web"): the screen with its colours.
@click.option("--escapes", is_flag=True, hidden=True)
@click.pass_context
def capture_cmd(ctx: click.Context, agent: str, lines: int | None, escapes: bool) -> None:
    """Print what AGENT's screen shows now."""
    from mosaic.config.load import load
    from mosaic.fleet import open_fleet
    from mosaic.hosts import route

    paths = paths_of(ctx)
    roster = load(paths.roster, cache_dir=paths.run)
    host = route.remote_for(paths, roster, agent)
    if host is not None:
        reply = host.call(["capture", agent, *(["-n", str(lines)] if lines else []),
                           *(["--escapes"] if escapes else [])])  # fmt: skip
        _write(reply.out)
        return
    fleet = open_fleet(paths, roster=roster)
    pane = _pane_of(fleet, agent)
    args = ["capture-pane", "-p", *(["-e"] if escapes else []), "-t", pane.id]
    if lines is not None:
        args += ["-S", f"-{lines}"]
    text = fleet.tmux.out(*args).rstrip("\n").split("\n")
    while text and not text[-1].strip():
        text.pop()
    if lines is not None:
        text = text[-lines:]
    # click.echo would strip the escapes when stdout is not a terminal (an SSH pipe).
    _write(("\n".join(text) + "\n").encode())


def _write(data: bytes) -> None:
    """A host's output, byte for byte."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _pane_of(fleet: Fleet, agent: str) -> Pane:
    """A local roster agent's pane; an absent session is a failure."""
    from mosaic.tmux.panes import list_panes

    pane = (list_panes(fleet.tmux) or {}).get(agent)
    if pane is None:
        raise OperationFailed(f"agent {agent} is not running (no session)")
    return pane


def _attach(ctx: click.Context, agent: str, read_only: bool) -> None:
    from mosaic.config.load import load
    from mosaic.fleet import open_fleet
    from mosaic.hosts import route

    paths = paths_of(ctx)
    roster = load(paths.roster, cache_dir=paths.run)
    host = route.remote_for(paths, roster, agent)
    if host is not None:
        _need_terminal()
        # `ssh -t` to the host's own `watch`/`attach`: its mosaic knows its tmux socket.
        host.exec_tty(["watch" if read_only else "attach", agent])
    fleet = open_fleet(paths, roster=roster)
    _pane_of(fleet, agent)
    _need_terminal()
    argv = fleet.tmux.argv("attach-session", *(["-r"] if read_only else []), "-t", f"={agent}")
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)


def _need_terminal() -> None:
    if not sys.stdin.isatty():
        raise OperationFailed("attaching needs a terminal; use `capture` to read the screen")


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
    from mosaic.cli.common import reader_gone
    from mosaic.config.load import load
    from mosaic.hosts import route
    from mosaic.tmux import transcript

    paths = paths_of(ctx)
    host = route.remote_for(paths, load(paths.roster, cache_dir=paths.run), agent)
    if host is not None:
        args = ["logs", agent, "-n", str(lines), *(["-f"] if follow else [])]
        if not follow:
            _write(host.call(args).out)
            return
        for data in host.follow(args):
            _write(data)
        return
    log = paths.agent_log(agent)
    if not transcript.exists(log) and not follow:
        raise OperationFailed(f"agent {agent} has no transcript yet ({log})")
    for line in transcript.tail(log, lines):
        click.echo(line)
    if follow:
        # Ends when whoever reads us is gone (a closed pipe; an SSH client that left).
        for chunk in transcript.follow(log, stop=reader_gone):
            click.echo(chunk, nl=False)
