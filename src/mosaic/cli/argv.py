"""The plain-argv reader the click-free fast paths share (`quickvalidate`, `quickstatus`,
`quickevents`, `quickcomplete`): `fleet`'s own flags, read exactly as click would read
them, or None for anything click must judge. Imports only `os`."""

from __future__ import annotations

import os

from mosaic import __version__

# `--controller-version` is what a controller adds when it calls this machine as a host
# (docs/hosts.md): a host's `status --json` then takes the same fast path as a person's.
GROUP_FLAGS = ("--mosaic-home", "--roster", "--controller-version")


def split_group(args: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """`fleet`'s own flags and the words after them (the command and its arguments), or
    None for anything else (other or repeated flags, odd values, a home that is a file or a
    roster that is a directory, which click's path types refuse)."""
    if args[:1] != ["fleet"]:
        return None
    flags: dict[str, str] = {}
    rest = args[1:]
    while rest and rest[0].startswith("-"):
        flag, eq, value = rest.pop(0).partition("=")
        if flag not in GROUP_FLAGS or flag in flags:
            return None
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None
        flags[flag] = value
    if flags.get("--controller-version", __version__) != __version__:
        return None  # another release: click's group judges it (hosts/version.py)
    home, roster = flags.get("--mosaic-home"), flags.get("--roster")
    if home is not None and os.path.exists(home) and not os.path.isdir(home):
        return None
    if roster is not None and os.path.isdir(roster):
        return None
    return flags, rest
