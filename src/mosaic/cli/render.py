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
    remote = [h for h in doc.get("hosts", []) if h["name"] != "local"]
    for h in remote:
        if h["error"]:
            state = "unreachable" if not h["reachable"] else "error"
            # A host's message may quote anything: text, never rich markup.
            console.print(f"[red]host {escape(h['name'])} {state}:[/] {escape(h['error'])}")
    table = Table(box=None, header_style="bold")
    drifted = any(a.get("drift") for a in doc["agents"])
    columns = ["agent", "runtime", "state", "activity", "pid", "uptime", "restarts", "last exit"]
    if remote:
        columns.insert(1, "host")
    if drifted:
        columns.append("drift")
    for col in columns:
        table.add_column(col)
    colours = {"running": "green", "starting": "yellow", "failed": "red", "stopped": "dim",
               "unknown": "magenta"}  # fmt: skip
    for a in doc["agents"]:
        colour = colours.get(a["state"], "")
        # Rows may come from other hosts' documents: every value is text, never markup.
        row = [
            escape(str(a["name"])),
            escape(str(a["runtime"])),
            f"[{colour}]{escape(a['state'])}[/]" if colour else escape(str(a["state"])),
            escape(str(a["activity"])),
            str(a["pid"] or "-"),
            _duration(a["uptime_s"]),
            "-" if a["restarts"] is None else str(a["restarts"]),
            "-" if a["last_exit"] is None else str(a["last_exit"]),
        ]
        if remote:
            row.insert(1, escape(str(a.get("host", "local"))))
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
