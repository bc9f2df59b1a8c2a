"""`mosaic fleet apply [--dry-run] [--json]`: print the plan, and without --dry-run carry it
out (the work is in `mosaic.apply`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mosaic.cli.common import echo_json, paths_of

if TYPE_CHECKING:
    from mosaic.apply.execute import Report


@click.command("apply")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def apply_cmd(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Make the running fleet match the roster: start agents that do not run, restart
    those whose settings changed, stop those that left the roster; touch no other agent."""
    from mosaic.apply import execute
    from mosaic.apply.execute import Report
    from mosaic.fleet import open_fleet

    fleet = open_fleet(paths_of(ctx), deciding=not dry_run)
    report = Report(execute.prepare(fleet).plan, {}) if dry_run else execute.apply(fleet)
    doc = document(report, dry_run, str(fleet.supervisor))
    if as_json:
        echo_json(doc)
    else:
        _table(doc)
    ctx.exit(1 if report.failed else 0)


def document(report: Report, dry_run: bool, supervisor: str) -> dict[str, Any]:
    """The `--json` document: the plan, and for a real run what became of each step."""
    doc: dict[str, Any] = {"dry_run": dry_run, "supervisor": supervisor,
                           **report.plan.to_doc()}  # fmt: skip
    for row in doc["agents"]:
        outcome = report.outcomes.get(row["name"])
        row["result"] = None if outcome is None else ("ok" if outcome.ok else "failed")
        row["error"] = None if outcome is None else outcome.error
        # What the supervisor did, e.g. "stopped", "started (pid 4242)".
        row["done"] = [] if outcome is None else [_done(row["name"], x) for x in outcome.lines]
    doc["units_error"] = report.unit_error
    doc["ok"] = not report.failed
    return doc


def _done(name: str, line: str) -> str:
    return line.removeprefix(f"{name}: ")


def _table(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if doc["dry_run"]:
        console.print("dry run: nothing is changed; apply would:")
    if not doc["changes"]:
        console.print("nothing to do: the running fleet matches the roster")
    table = Table(box=None, header_style="bold")
    for col in ("agent", "action", "why"):
        table.add_column(col)
    real = not doc["dry_run"]
    if real:
        table.add_column("result")
    colours = {"start": "green", "restart": "yellow", "stop": "red", "unchanged": "dim"}
    for row in doc["agents"]:
        action = row["action"]
        cells = [
            row["name"],
            f"[{colours[action]}]{action}[/]",
            escape("; ".join(row["reasons"])) or "-",
        ]
        if real:
            cells.append(
                "-" if row["result"] is None
                else escape(", ".join(row["done"]) or "ok") if row["result"] == "ok"
                else f"[red]failed: {escape(row['error'] or '')}[/]"
            )  # fmt: skip
        table.add_row(*cells)
    if doc["agents"]:
        console.print(table)
    for unit in doc["units"]:
        console.print(f"unit: {unit['action']} {escape(unit['target'])}")
    if doc["units_error"]:
        console.print(f"[red]units: {escape(doc['units_error'])}")
