"""`mosaic fleet init | presets | add | remove | validate`: parse flags, call the library, print.

Errors are raised as `mosaic.errors` exceptions and printed by `cli.main` (exit 2 for a bad
roster or usage, never a traceback). Nothing here imports rich: `validate` runs in scripts
and CI, where start-up time matters more than colour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mosaic.cli.common import paths_of
from mosaic.cli.completion import complete_agents, complete_presets, complete_runtimes
from mosaic.config.presets import DEFAULT_PRESET

if TYPE_CHECKING:
    from mosaic.fleet import Fleet


@click.command("init")
@click.option(
    "--preset",
    default=DEFAULT_PRESET,
    show_default=True,
    metavar="NAME",
    help="Preset to start from (see `mosaic fleet presets`).",
    shell_complete=complete_presets,
)
@click.option("--force", is_flag=True, help="Overwrite an existing roster.")
@click.pass_context
def init_cmd(ctx: click.Context, preset: str, force: bool) -> None:
    """Write a roster from a preset; an existing roster is kept unless --force."""
    from mosaic.config import rosteredit

    path = rosteredit.init(paths_of(ctx), preset=preset, force=force)
    click.echo(f"wrote {path} (preset {preset}); check it with `mosaic fleet validate`")


@click.command("presets")
def presets_cmd() -> None:
    """List the roster presets with a line each."""
    from mosaic.config import presets

    width = max(len(n) for n in presets.names())
    for name in presets.names():
        click.echo(f"{name:<{width}}  {presets.get(name).description}")


def _parse_env(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx=ctx, param=param)
        env[key] = value
    return env


@click.command("add")
@click.argument("name")
@click.option("--runtime", "runtime", required=True, metavar="RT", help="Runtime of the agent.",
              shell_complete=complete_runtimes)  # fmt: skip
@click.option("--workdir", metavar="DIR", help="Working directory (~ and $VARS allowed).")
@click.option("--arg", "args", multiple=True, metavar="A", help="Argument for the runtime.")
@click.option(
    "--env", "env", multiple=True, metavar="K=V", callback=_parse_env, help="Environment."
)
@click.pass_context
def add_cmd(
    ctx: click.Context,
    name: str,
    runtime: str,
    workdir: str | None,
    args: tuple[str, ...],
    env: dict[str, str],
) -> None:
    """Add an agent to the roster."""
    from mosaic.config import rosteredit

    paths = paths_of(ctx)
    rosteredit.add(
        paths,
        name,
        runtime,
        workdir=rosteredit.absolute_workdir(workdir) if workdir else None,
        args=args,
        env=env,
    )
    click.echo(f"added {name} ({runtime}) to {paths.roster}")


@click.command("remove")
@click.argument("name", shell_complete=complete_agents)
@click.pass_context
def remove_cmd(ctx: click.Context, name: str) -> None:
    """Remove an agent from the roster, stopping it first if it runs."""
    from mosaic import supervise
    from mosaic.config import rosteredit
    from mosaic.errors import TmuxMissingError
    from mosaic.fleet import open_fleet
    from mosaic.tmux.panes import list_panes

    paths = paths_of(ctx)
    fleet = open_fleet(paths)
    agent = fleet.roster.agent(name)
    if agent.host is not None:
        _stop_remote(fleet, name)
        rosteredit.remove(paths, name)
        click.echo(f"removed {name} from {paths.roster}")
        return
    try:
        pane = (list_panes(fleet.tmux) or {}).get(name)
    except TmuxMissingError:
        pane = None  # without tmux nothing can be running
    if pane is not None:
        # A removed agent must not keep running unmanaged; a failed stop keeps it listed.
        for line in supervise.stop(fleet, [agent], whole=False):
            click.echo(line)
    rosteredit.remove(paths, name)
    click.echo(f"removed {name} from {paths.roster}")


def _stop_remote(fleet: Fleet, name: str) -> None:
    """Stop a remote agent on its host before it leaves the roster; an unreachable host
    keeps it listed. A host whose roster never had it has nothing to stop."""
    from mosaic.errors import ExitCode
    from mosaic.hosts import merge, route
    from mosaic.hosts.remote import LIFECYCLE_S, HostError

    host = route.remote_for(fleet.paths, fleet.roster, name)
    assert host is not None
    try:
        lines = host.lines(["stop", name], timeout=LIFECYCLE_S)
    except HostError as exc:
        if exc.exit_code is ExitCode.USAGE and "unknown agent" in exc.message:
            return
        raise
    for line in merge.prefixed(host.name, lines):
        click.echo(line)


@click.command("validate")
@click.pass_context
def validate_cmd(ctx: click.Context) -> None:
    """Check the roster (exit 2 with every problem) and warn about runtimes whose program
    is not installed; those only become errors at `start`."""
    import os

    from mosaic.cli.quickvalidate import render
    from mosaic.config import load, programs, rostercache
    from mosaic.config.roster import program_uses

    paths = paths_of(ctx)
    data = load.read(paths.roster)
    env = load.EnvRecorder(os.environ)
    fleet = load.load_bytes(data, paths.roster, env, cache_dir=paths.run)
    uses = program_uses(fleet)
    missing = programs.missing(uses, os.environ)  # never cached: installs change it
    warnings, verdict = render(str(paths.roster), len(fleet.agents), missing)
    for line in warnings:
        click.echo(line, err=True)
    click.echo(verdict)
    if not any(fleet.runtime_for(agent).env_dependent for agent in fleet.agents):
        # What the next run needs to answer without click (`cli.quickvalidate`).
        rostercache.put_outcome(
            str(paths.run), str(paths.roster), data, env.reads, len(fleet.agents), uses
        )
