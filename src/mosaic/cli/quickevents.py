"""`mosaic fleet events --json` answered without click, for scripts that dump the log.

Dumping 10,000 events must cost little more than reading them, and click's import alone
costs more than the dump. When the argv is exactly `fleet [--mosaic-home H] [--roster R]
events --json [--since S] [--type T]...` (no AGENT, no --follow) and every value is valid,
the lines are printed from here with the same SQL `store.events` uses; in every other case
`run` returns None and click answers (errors included), so output and exit status are the
same either way. A roster that declares hosts (or may: `hosts.declared`) is a fleet whose
machines' logs click merges. Imports stay within `os`, `sys`, `time`, `sqlite3`.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time

from mosaic.cli.argv import split_group
from mosaic.config import locate
from mosaic.store import eventlines

# Kept equal to config.eventtypes.NAMES (tests/test_events_cli.py checks): importing the
# enum module for the check would cost more than the rest of this path.
TYPES = (
    "started", "exited", "restarting", "failed", "stopped", "busy", "idle",
    "awaiting_approval", "stuck", "sent", "delivered", "delivery_failed", "notify_failed",
    "watcher_started",
)  # fmt: skip


def parse(args: list[str]) -> dict[str, list[str]] | None:
    """The flags of a plain `fleet ... events --json ...` argv, or None for anything else."""
    split = split_group(args)
    if split is None or split[1][:1] != ["events"]:
        return None
    group, rest = split
    flags: dict[str, list[str]] = {k: [v] for k, v in group.items()}
    rest = rest[1:]
    while rest:
        arg = rest.pop(0)
        if arg == "--json" and "--json" not in flags:
            flags["--json"] = []
            continue
        flag, eq, value = arg.partition("=")
        if flag not in ("--since", "--type") or (flag in flags and flag != "--type"):
            return None
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None
        flags.setdefault(flag, []).append(value)
    return flags if "--json" in flags else None


def run(args: list[str]) -> int | None:
    flags = parse(args)
    if flags is None:
        return None
    types = flags.get("--type", [])
    if any(t not in TYPES for t in types):
        return None
    after, since_ts = 0, None
    if "--since" in flags:
        parsed = eventlines.since_arg(flags["--since"][0], time.time())
        if parsed is None:
            return None
        after = parsed[0]
        since_ts = eventlines.iso(parsed[1]) if parsed[1] is not None else None
    home_flag = flags.get("--mosaic-home", [])
    roster_flag = flags.get("--roster", [])
    home, roster = locate.home_and_roster(
        home_flag[0] if home_flag else None, roster_flag[0] if roster_flag else None, os.environ
    )
    if _hosts_maybe(home, roster):
        return None
    path = locate.db_file(home)
    if not os.path.exists(path):
        return 0
    clause, values = eventlines.where(after, since_ts, list(dict.fromkeys(types)), None, None)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = eventlines.lines(conn, clause, values)
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # an older schema, no JSON functions...: click's path knows what to do
    if rows:
        try:
            sys.stdout.write("\n".join(line for _, line in rows) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    return 0


def _hosts_maybe(home: str, roster: str) -> bool:
    """Whether the roster declares hosts, or only loading it could tell."""
    from mosaic.hosts.declared import declares

    try:
        with open(roster, "rb") as f:
            data = f.read()
    except OSError:
        return False  # no roster: this machine's log alone, as click reads it too
    return declares(locate.run_dir(home), data) is not False
