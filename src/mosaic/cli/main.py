"""Entry point. A command's module is imported only when that command runs (or `--help`
lists them all), so each command pays only for itself.

Errors end here: a `MosaicError` prints its message and exits with its code, Ctrl-C prints
one line and exits 130, and click's own usage errors exit 2 — never a traceback. Anything
else is a bug, and shows one.
"""

from __future__ import annotations

import importlib

import click

from mosaic import __version__

# command name -> "module:attribute"; each command's help is its own docstring.
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
    "apply": "mosaic.cli.apply_cmd:apply_cmd",
    "runtimes": "mosaic.cli.runtimes_cmd:runtimes_cmd",
    "events": "mosaic.cli.events_cmd:events_cmd",
    "approve": "mosaic.cli.approve_cmd:approve_cmd",
    "outbox": "mosaic.cli.outbox_cmd:outbox_cmd",
    "web": "mosaic.cli.web_cmd:web_cmd",
}
# Not for people: what a controller runs on a host over SSH (docs/hosts.md); never listed.
HOST_COMMANDS: dict[str, str] = {
    "roster-put": "mosaic.cli.host_cmds:roster_put_cmd",
}



class Interrupted(BaseException):
    """Ctrl-C, carried past click: click answers a KeyboardInterrupt with a blank line on
    stderr and an Abort, and the contract is one line (`mosaic.cli.interrupted`)."""


class Root(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted from None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(FLEET_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = FLEET_COMMANDS.get(cmd_name) or HOST_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":", 1)
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=Root, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--controller-version", "controller_version", default=None, hidden=True)
@click.pass_context
def fleet(
    ctx: click.Context, mosaic_home: str | None, roster: str | None, controller_version: str | None
) -> None:
    """Start, stop, watch and talk to the agents of the roster."""
    from mosaic.config import paths

    if controller_version is not None:
        # A controller is calling over SSH: refuse one of another release before anything.
        from mosaic.hosts.version import check_controller

        check_controller(controller_version)
    ctx.obj = paths.resolve(home=mosaic_home, roster=roster)


def main(argv: list[str] | None = None) -> int:
    from mosaic.errors import ExitCode, MosaicError

    try:
        result = cli.main(args=argv, prog_name="mosaic", standalone_mode=False)
    except MosaicError as exc:
        click.echo(exc.message, err=True)
        return int(exc.exit_code)
    except (Interrupted, click.exceptions.Abort, KeyboardInterrupt):
        from mosaic.cli import interrupted

        return interrupted()
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return result if isinstance(result, int) else int(ExitCode.OK)
