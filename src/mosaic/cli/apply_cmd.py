"""`mosaic fleet apply [--dry-run] [--json]`: print the plan, and without --dry-run carry it
out (the work is in `mosaic.apply`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mosaic.cli.common import echo_json, paths_of

if TYPE_CHECKING:
    from mosaic.config.paths import Paths
    from mosaic.config.roster import Roster


@click.command("apply")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
# A controller calling this machine as a host: its part of the roster comes on stdin.
@click.option("--controller-roster", "from_controller", is_flag=True, hidden=True)
@click.pass_context
def apply_cmd(ctx: click.Context, dry_run: bool, as_json: bool, from_controller: bool) -> None:
    """Make the running fleet match the roster: start agents that do not run, restart
    those whose settings changed, stop those that left the roster; touch no other agent.
    With hosts in the roster, every machine applies its own part."""
    from mosaic.apply import execute
    from mosaic.apply.execute import Report
    from mosaic.config.load import decode, load_bytes, read
    from mosaic.fleet import open_fleet

    paths = paths_of(ctx)
    if from_controller:
        roster = _from_controller(paths, dry_run)
    else:
        data = read(paths.roster)
        roster = load_bytes(data, paths.roster, cache_dir=paths.run)
        if roster.hosts:
            _every_machine(ctx, paths, roster, decode(data, paths.roster), dry_run, as_json)
            return
    fleet = open_fleet(paths, deciding=not dry_run, roster=roster)
    report = Report(execute.prepare(fleet).plan, {}) if dry_run else execute.apply(fleet)
    doc = report.to_doc(dry_run, str(fleet.supervisor))
    if as_json:
        echo_json(doc)
    else:
        _table(doc)
    ctx.exit(1 if report.failed else 0)


def _from_controller(paths: Paths, dry_run: bool) -> Roster:
    """This host's part of a controller's roster, from stdin: installed first (as
    `roster-put` does), or for a dry run only planned against (nothing is written)."""
    import sys

    from mosaic.config.load import load
    from mosaic.hosts import hostroster

    data = sys.stdin.buffer.read(hostroster.MAX_BYTES + 1)
    if dry_run:
        return hostroster.proposed(paths, data)
    hostroster.receive(paths, data)
    return load(paths.roster, cache_dir=paths.run)


def _every_machine(
    ctx: click.Context, paths: Paths, roster: Roster, text: str, dry_run: bool, as_json: bool
) -> None:
    from mosaic.hosts import applying

    doc, code, errors = applying.apply(paths, roster, text, dry_run)
    if as_json:
        echo_json(doc)
    else:
        _table(doc)
    for message in errors:
        click.echo(message, err=True)
    ctx.exit(code)


def _table(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if doc["dry_run"]:
        console.print("dry run: nothing is changed; apply would:")
    if not doc["changes"] and not any(h["error"] for h in doc.get("hosts", [])):
        console.print("nothing to do: the running fleet matches the roster")
    table = Table(box=None, header_style="bold")
    hosts = "hosts" in doc  # a fleet with hosts: which machine each step is on
    for col in ("agent", *(["host"] if hosts else []), "action", "why"):
        table.add_column(col)
    real = not doc["dry_run"]
    if real:
        table.add_column("result")
    colours = {"start": "green", "restart": "yellow", "stop": "red", "unchanged": "dim",
               "unknown": "red"}  # fmt: skip
    for row in doc["agents"]:
        action = row["action"]
        cells = [
            row["name"],
            *([escape(row["host"])] if hosts else []),
            f"[{colours.get(action, 'red')}]{escape(action)}[/]",
            escape("; ".join(row["reasons"])) or "-",
        ]
        if real:
            cells.append(
                "-" if row["result"] is None
                else escape(", ".join(row["done"]) or "ok") if row["result"] == "ok"
                else "[red]not applied[/]" if action == "unknown"  # the why says why
                else f"[red]failed: {escape(row['error'] or '')}[/]"
            )  # fmt: skip
        table.add_row(*cells)
    if doc["agents"]:
        console.print(table)
    for unit in doc["units"]:
        where = f"[{escape(unit['host'])}] " if hosts else ""
        console.print(f"{where}unit: {unit['action']} {escape(unit['target'])}")
    for entry in doc.get("hosts") or [{"name": None, "units_error": doc["units_error"]}]:
        if entry.get("units_error"):
            where = f"[{escape(entry['name'])}] " if entry["name"] else ""
            console.print(f"[red]{where}units: {escape(entry['units_error'])}")
