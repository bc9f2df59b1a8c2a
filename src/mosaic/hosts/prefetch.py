"""Asking the hosts for `status` (or the outbox listing) while this process is still
starting up.

A controller's own start-up (the interpreter, click or the click-free path's imports)
costs about as much as a small host's whole `status`, and would otherwise come first. So
for the plain `mosaic fleet [--mosaic-home H] [--roster R] status [--json]`, `cli.main`
(or `cli.quickstatus`, for `--json`) calls `start` before anything else is imported: when
the roster is one already parsed and checked (its cached form, `config.rostercache`) and it
declares hosts, it is loaded the usual way and every host's `status --json` is started
exactly as `status` will ask it (`remote.STATUS`, the same `Remote.command`, the same
`Link.argv`). The status command's own call then takes the started one over (`Link.run`),
so each host works while this process loads the rest. The whole-fleet
`outbox [--all] [--json]` is started ahead the same way (`remote.outbox_listing`).
Anything unusual, or any problem, is left to the normal path, which reports it; a call
nobody takes over is ended at exit.
"""

from __future__ import annotations

import os


def start(args: list[str]) -> None:
    from mosaic.cli.argv import split_group
    from mosaic.config import locate

    split = split_group(args)
    if split is None:
        return
    flags, words = split
    home, roster_file = locate.home_and_roster(
        flags.get("--mosaic-home"), flags.get("--roster"), os.environ
    )
    try:
        with open(roster_file, "rb") as f:
            data = f.read()
    except OSError:
        return
    if b"hosts" not in data:
        return  # a one-machine fleet, known without unpacking the cache
    command = _ahead(words)
    if command is None:
        return
    from mosaic.config import rostercache

    doc = rostercache.get_doc(locate.run_dir(home), data)
    if not isinstance(doc, dict) or not doc.get("hosts"):
        return  # a one-machine fleet (or a roster not parsed yet): nothing to start ahead
    _start_hosts(home, roster_file, data, command)


def _ahead(words: list[str]) -> tuple[str, ...] | None:
    """What each host is asked for the command `words`, when it is one started ahead."""
    if words in (["status"], ["status", "--json"]):
        from mosaic.hosts.remote import STATUS

        return STATUS
    once = len(set(words)) == len(words)
    if words[:1] == ["outbox"] and once and set(words[1:]) <= {"--all", "--json"}:
        from mosaic.hosts.remote import outbox_listing

        return outbox_listing("--all" in words)
    return None


def _start_hosts(home: str, roster_file: str, data: bytes, command: tuple[str, ...]) -> None:
    from pathlib import Path

    from mosaic.config.load import load_bytes
    from mosaic.config.paths import Paths
    from mosaic.errors import MosaicError
    from mosaic.hosts import route

    paths = Paths(Path(home), Path(roster_file))
    try:
        roster = load_bytes(data, paths.roster, cache_dir=paths.run)
        for host in roster.hosts[: route.parallelism()]:  # the fan-out's own bound
            remote = route.remote(paths, host)
            remote.link.start_ahead(remote.command(command))
    except (MosaicError, OSError):
        return
