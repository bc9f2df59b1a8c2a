"""`install` and `uninstall`: the systemd user units of the fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mosaic.cli.common import paths_of

if TYPE_CHECKING:
    from mosaic.supervise.systemd.install import InstallPlan


def _echo_lines(lines: list[str], prefix: str = "") -> None:
    for line in lines:
        click.echo(f"{prefix}{line}")


@click.command("install")
@click.option("--no-enable", is_flag=True, help="Write the units but do not enable them.")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.pass_context
def install_cmd(ctx: click.Context, no_enable: bool, dry_run: bool) -> None:
    """Write the systemd user units, daemon-reload and enable them."""
    from mosaic.config.load import load
    from mosaic.config.roster import Supervisor
    from mosaic.supervise import choice
    from mosaic.supervise.systemd import install, units

    paths = paths_of(ctx)
    fleet_roster = load(paths.roster)
    unit_ctx = units.UnitContext.from_environment(paths, fleet_roster)
    if not dry_run:
        # Before touching files: a half-install without a manager to load it helps no one.
        install.require_user_manager()
    plan = install.plan_install(unit_ctx, fleet_roster, enable=not no_enable)
    if dry_run:
        click.echo("dry run: nothing is changed; install would:")
        _echo_lines(plan.describe(), "  ")
        return
    _echo_lines(install.apply(plan))
    choice.record(paths, Supervisor.SYSTEMD, "its units were installed")
    _report_restart_needed(plan, fleet_roster.names)
    advice = install.linger_advice(install.linger_state())
    if advice:
        click.echo(advice, err=True)


def _report_restart_needed(plan: InstallPlan, agents: list[str]) -> None:
    from mosaic.supervise.systemd import install, units

    changed = {c.path.name for c in plan.changed_files}
    if not changed & {units.HOLDER_UNIT, units.AGENT_TEMPLATE}:
        return
    running = install.active_units([units.HOLDER_UNIT, *(units.agent_unit(a) for a in agents)])
    if running:
        click.echo(
            "note: units changed while running ("
            + ", ".join(running)
            + "); `mosaic fleet restart` applies the new units",
            err=True,
        )


@click.command("uninstall")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.pass_context
def uninstall_cmd(ctx: click.Context, dry_run: bool) -> None:
    """Stop, disable and remove the systemd user units."""
    from mosaic.config.roster import Supervisor
    from mosaic.supervise import choice
    from mosaic.supervise.systemd import install, systemctl

    paths = paths_of(ctx)  # the roster is deliberately not read: a broken one must not block
    reachable = systemctl.user_manager_available()
    if not dry_run and not reachable:
        install.require_user_manager()
    plan = install.plan_uninstall(ask_manager=reachable)
    if dry_run:
        click.echo("dry run: nothing is changed; uninstall would:")
        _echo_lines(plan.describe(), "  ")
        if not reachable:
            click.echo(
                "note: the systemd user manager is not reachable; running units are not listed",
                err=True,
            )
        return
    lines = install.apply(plan)
    rec = choice.recorded(paths)
    if rec is not None and rec.supervisor is Supervisor.SYSTEMD:
        choice.forget(paths)
    _echo_lines(lines or ["nothing was installed"])
