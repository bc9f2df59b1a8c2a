"""`mosaic fleet validate` for a roster already validated, answered without click.

Scripts, cron jobs and editors run `validate` over and over on a roster that has not
changed, and click alone costs more than three bare interpreter start-ups. When the argv is
exactly `fleet [--mosaic-home H] [--roster R] validate` and the outcome cache
(`rostercache`) holds this roster's bytes, the answer is printed from it here, with the
programs checked afresh; in every other case, `run` returns None and click takes over, so
output and exit status are the same either way. Imports stay within `os`, `sys`, `marshal`.
"""

from __future__ import annotations

import os
import sys

from mosaic.cli.argv import split_group
from mosaic.config import locate, programs, rostercache


def render(roster: str, agents: int, missing: list[programs.Missing]) -> tuple[list[str], str]:
    """(warning lines for stderr, the verdict line for stdout); shared with the click path."""
    warnings = [f"WARNING: {programs.describe(item)}" for item in missing]
    noun = "agent" if agents == 1 else "agents"
    return warnings, f"OK: {roster}: {agents} {noun}"


def parse(args: list[str]) -> dict[str, str] | None:
    """The group's flags of a plain `fleet ... validate` argv, or None for anything else
    (help, unknown or repeated flags, odd values), which is left to click."""
    split = split_group(args)
    return split[0] if split is not None and split[1] == ["validate"] else None


def run(args: list[str]) -> int | None:
    """Exit status after answering from the cache, or None when click must answer."""
    flags = parse(args)
    if flags is None:
        return None
    home, roster = locate.home_and_roster(
        flags.get("--mosaic-home"), flags.get("--roster"), os.environ
    )
    try:
        roster.encode()  # a path click would print differently is left to click
        with open(roster, "rb") as f:
            data = f.read()
    except (OSError, UnicodeError):
        return None
    outcome = rostercache.get_outcome(locate.run_dir(home), roster, data, os.environ)
    if outcome is None:
        return None
    agents, uses = outcome
    warnings, verdict = render(roster, agents, programs.missing(uses, os.environ))
    for line in warnings:
        sys.stderr.write(line + "\n")
    sys.stdout.write(verdict + "\n")
    sys.stdout.flush()
    return 0
