"""Entry point. Command modules are imported only when their command runs, so
`mosaic --version` and `mosaic fleet --help` stay close to bare interpreter start-up."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from mosaic import __version__

# command name -> "module:attribute". A command exists only once its module does.
FLEET_COMMANDS: dict[str, str] = {
    "init": "mosaic.cli.roster_cmds:init_cmd",
    "presets": "mosaic.cli.roster_cmds:presets_cmd",
    "add": "mosaic.cli.roster_cmds:add_cmd",
    "remove": "mosaic.cli.roster_cmds:remove_cmd",
    "validate": "mosaic.cli.roster_cmds:validate_cmd",
    "install": "mosaic.cli.unit_cmds:install_cmd",
    "uninstall": "mosaic.cli.unit_cmds:uninstall_cmd",
    "start": "mosaic.cli.run_cmds:start_cmd",
    "stop": "mosaic.cli.run_cmds:stop_cmd",
    "restart": "mosaic.cli.run_cmds:restart_cmd",
    "status": "mosaic.cli.run_cmds:status_cmd",
    "send": "mosaic.cli.send_cmd:send_cmd",
    "capture": "mosaic.cli.run_cmds:capture_cmd",
    "watch": "mosaic.cli.run_cmds:watch_cmd",
    "attach": "mosaic.cli.run_cmds:attach_cmd",
    "logs": "mosaic.cli.run_cmds:logs_cmd",
}

SHORT_HELP: dict[str, str] = {
    "init": "Write a roster from a preset.",
    "presets": "List the roster presets.",
    "add": "Add an agent to the roster.",
    "remove": "Remove an agent from the roster (stopping it first).",
    "validate": "Check the roster and the runtimes' programs.",
    "install": "Write and enable the systemd user units.",
    "uninstall": "Stop, disable and remove the systemd user units.",
    "start": "Start the holder and the agent(s).",
    "stop": "Stop the agent(s); the holder too when the whole fleet stops.",
    "restart": "Restart the agent(s) under the restart lock.",
    "status": "Show the state of the fleet and each agent.",
    "send": "Type a message into agents and verify they accepted it.",
    "capture": "Print what an agent's screen shows now.",
    "watch": "Attach to an agent read-only.",
    "attach": "Attach to an agent interactively.",
    "logs": "Show an agent's transcript.",
}


def _available(target: str) -> bool:
    module = target.split(":", 1)[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, target in FLEET_COMMANDS.items() if _available(target)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = FLEET_COMMANDS.get(cmd_name)
        if target is None or not _available(target):
            return None
        module, attr = target.split(":", 1)
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every command module: use the static short help.
        rows = [(n, SHORT_HELP.get(n, "")) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mosaic", message="%(prog)s %(version)s")
def cli() -> None:
    """mosaic: run a fleet of AI coding agents in tmux."""


@cli.group(cls=LazyGroup)
@click.option(
    "--mosaic-home",
    "mosaic_home",
    type=click.Path(file_okay=False),
    default=None,
    help="mosaic home (default $MOSAIC_HOME, $XDG_CONFIG_HOME/mosaic, ~/.config/mosaic).",
)
@click.option(
    "--roster",
    "roster",
    type=click.Path(dir_okay=False),
    default=None,
    help="Roster file (default $MOSAIC_FLEET_ROSTER or <home>/fleet/roster.yaml).",
)
@click.pass_context
def fleet(ctx: click.Context, mosaic_home: str | None, roster: str | None) -> None:
    """Start, stop, watch and talk to the agents of the roster."""
    from mosaic import paths

    ctx.obj = paths.resolve(home=mosaic_home, roster=roster)


def main(argv: list[str] | None = None) -> Any:
    from mosaic.errors import MosaicError

    try:
        return cli.main(args=argv, prog_name="mosaic")
    except MosaicError as exc:
        click.echo(exc.message, err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
