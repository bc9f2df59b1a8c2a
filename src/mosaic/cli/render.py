"""What commands print: tables for people (rich is imported only here, only by commands
that draw) and the one JSON document scripts get."""

from __future__ import annotations

# `typing` costs a measurable share of `status`'s start-up; annotations only need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



def json_document(doc: Any) -> str:
    """The `--json` output line, shared by click commands and the pre-click fast paths so
    both print the same bytes."""
    import json

    return json.dumps(doc, ensure_ascii=False, sort_keys=False) + "\n"


def status_table(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(
        f"supervisor [bold]{doc['supervisor']}[/]  socket [bold]{doc['socket']}[/]  "
        f"holder [bold]{doc['holder']}[/]"
    )
    watcher = doc.get("watcher") or {}
    if watcher.get("state") == "running":
        age = watcher.get("last_tick_age_s")
        console.print(f"watcher [bold]running[/] (pid {watcher.get('pid')}, last tick {age}s ago)")
    elif watcher:
        console.print("watcher [dim]stopped[/] (no events, notifications or activity times)")
    if doc.get("restart_in_progress"):
        info = doc["restart_in_progress"]
        console.print(f"[yellow]{info.get('line') or info.get('error')}")
    table = Table(box=None, header_style="bold")
    drifted = any(a.get("drift") for a in doc["agents"])
    for col in ("agent", "runtime", "state", "activity", "pid", "uptime", "restarts", "last exit"):
        table.add_column(col)
    if drifted:
        table.add_column("drift")
    colours = {"running": "green", "starting": "yellow", "failed": "red", "stopped": "dim"}
    for a in doc["agents"]:
        colour = colours.get(a["state"], "")
        row = [
            a["name"],
            a["runtime"],
            f"[{colour}]{a['state']}[/]" if colour else a["state"],
            a["activity"],
            str(a["pid"] or "-"),
            _duration(a["uptime_s"]),
            str(a["restarts"]),
            "-" if a["last_exit"] is None else str(a["last_exit"]),
        ]
        if drifted:
            # Reasons quote roster paths: shown as text, never as rich markup.
            row.append(f"[yellow]{escape(a['drift_reason'])}[/]" if a.get("drift") else "-")
        table.add_row(*row)
    console.print(table)
    if drifted:
        console.print("[yellow]drift: running settings differ from the roster; "
                      "`mosaic fleet apply` restarts those agents")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
