"""Tables for people (rich is imported only here, only by commands that draw)."""

from __future__ import annotations

from typing import Any


def status_table(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"supervisor [bold]{doc['supervisor']}[/]  socket [bold]{doc['socket']}[/]  "
        f"holder [bold]{doc['holder']}[/]"
    )
    if doc.get("restart_in_progress"):
        info = doc["restart_in_progress"]
        console.print(f"[yellow]{info.get('line') or info.get('error')}")
    remote = [h for h in doc.get("hosts", []) if h["name"] != "local"]
    for h in remote:
        if h["error"]:
            state = "unreachable" if not h["reachable"] else "error"
            console.print(f"[red]host {h['name']} {state}:[/] {h['error']}", markup=True)
    table = Table(box=None, header_style="bold")
    columns = ["agent", "runtime", "state", "activity", "pid", "uptime", "restarts", "last exit"]
    if remote:
        columns.insert(1, "host")
    for col in columns:
        table.add_column(col)
    colours = {"running": "green", "starting": "yellow", "failed": "red", "stopped": "dim",
               "unknown": "magenta"}  # fmt: skip
    for a in doc["agents"]:
        colour = colours.get(a["state"], "")
        cells = [
            a["name"],
            a["runtime"],
            f"[{colour}]{a['state']}[/]" if colour else a["state"],
            a["activity"],
            str(a["pid"] or "-"),
            _duration(a["uptime_s"]),
            "-" if a["restarts"] is None else str(a["restarts"]),
            "-" if a["last_exit"] is None else str(a["last_exit"]),
        ]
        if remote:
            cells.insert(1, a.get("host", "local"))
        table.add_row(*cells)
    console.print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
