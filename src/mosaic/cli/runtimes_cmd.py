"""`mosaic fleet runtimes`: which runtimes there are, whether their programs are installed,
and which program version each built-in profile was verified on (docs/runtimes.md).

A profile is a claim about one program's screens; an agent CLI that changes its screen can
break it, so the version the claim was checked against is shown next to the version the
user has. The roster is read only when it exists, for its custom runtimes; no tmux, no
database.
"""

from __future__ import annotations

import os
from typing import Any

import click

from mosaic.cli.common import echo_json, paths_of


def rows(runtimes: dict[str, Any], search: str) -> list[dict[str, Any]]:
    """One row per runtime: built-ins first in their own order, then custom ones by name."""
    from mosaic.config import programs

    ordered = sorted(runtimes.values(), key=lambda r: (not r.builtin, 0 if r.builtin else r.name))
    out = []
    for runtime in ordered:
        path = programs.find(runtime.program, search)
        out.append(
            {
                "name": runtime.name,
                "program": runtime.program,
                "installed": path is not None,
                "path": path,
                "builtin": runtime.builtin,
                "profile": runtime.profile,
                "verified": runtime.verified or None,
            }
        )
    return out


@click.command("runtimes")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def runtimes_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the runtimes: program, whether it is installed, the version it was verified on."""
    from mosaic.config.load import load
    from mosaic.config.runtimes import builtin_runtimes

    paths = paths_of(ctx)
    runtimes = builtin_runtimes()
    if paths.roster.exists():
        runtimes = load(paths.roster, cache_dir=paths.run).runtimes
    table = rows(runtimes, os.environ.get("PATH", os.defpath))
    if as_json:
        echo_json({"runtimes": table})
        return
    header = ("runtime", "program", "installed", "verified on")
    lines = [
        (
            r["name"],
            r["program"],
            "no" if r["path"] is None else "yes" if r["path"] == r["program"] else r["path"],
            r["verified"] or ("not verified" if r["builtin"] else "-"),
        )
        for r in table
    ]
    widths = [max(len(row[i]) for row in (header, *lines)) for i in range(len(header))]
    for row in (header, *lines):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
