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

from mosaic.config import locate, programs, rostercache

_FLAGS = ("--mosaic-home", "--roster")


def render(roster: str, agents: int, missing: list[programs.Missing]) -> tuple[list[str], str]:
    """(warning lines for stderr, the verdict line for stdout); shared with the click path."""
    warnings = [f"WARNING: {programs.describe(item)}" for item in missing]
    noun = "agent" if agents == 1 else "agents"
    return warnings, f"OK: {roster}: {agents} {noun}"


def parse(args: list[str], tail: tuple[str, ...] = ("validate",)) -> dict[str, str] | None:
    """The group's flags of a plain `fleet ... validate` argv (or `fleet ... TAIL`), or None
    for anything else (help, unknown or repeated flags, odd values), which is left to click."""
    if len(args) < 1 + len(tail) or args[0] != "fleet" or tuple(args[-len(tail) :]) != tail:
        return None
    flags: dict[str, str] = {}
    rest = args[1 : -len(tail)]
    while rest:
        arg = rest.pop(0)
        flag, eq, value = arg.partition("=")
        if flag not in _FLAGS or flag in flags:
            return None
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None
        flags[flag] = value
    return flags


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
