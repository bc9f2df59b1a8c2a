"""`mosaic fleet status [AGENT] --json` answered without click.

Scripts and dashboards poll `status --json`, and click's import alone costs about what the
two tmux round trips of a 50-agent status cost. When the argv is exactly
`fleet [--mosaic-home H] [--roster R] status [AGENT] --json` (AGENT and --json in either
order), the running watcher is asked first (`watch/statusclient.py`: it computes the
document afresh with the same function, for this caller's environment, asking the hosts
too, or declines); otherwise the hosts are asked ahead (`hosts.prefetch`) and the document
is built here by the same `hosts.status.document` and printed by the
same `render.json_document` as the click command. Errors end as `cli.main` ends them
(message on stderr, the error's exit code), whichever process found them. Anything else
(help, other flags, a home that is a file or a roster that is a directory, which click
refuses) returns None, and click answers.
"""

from __future__ import annotations

import os
import sys

from mosaic.cli.argv import split_group


def parse(args: list[str]) -> tuple[dict[str, str], str | None] | None:
    """(group flags, AGENT or None) of a plain `status --json` argv, else None."""
    parsed = split_group(args)
    if parsed is None:
        return None
    flags, rest = parsed
    if rest[:1] != ["status"] or rest.count("--json") != 1:
        return None
    operands = [a for a in rest[1:] if a != "--json"]
    if len(operands) > 1 or any(a.startswith("-") for a in operands):
        return None
    return flags, operands[0] if operands else None


def run(args: list[str]) -> int | None:
    """Exit status after printing the document, or None when click must answer."""
    parsed = parse(args)
    if parsed is None:
        return None
    flags, agent = parsed
    served = _served(flags, agent)
    if served is not None:
        code, err, out = served
        sys.stderr.write(err)
        sys.stdout.write(out)
        sys.stdout.flush()
        return code
    if agent is None:
        # A fleet with hosts: they start answering while this process imports its part.
        from mosaic.hosts import prefetch

        prefetch.start(args)
    from mosaic.cli.render import json_document
    from mosaic.config.paths import resolve
    from mosaic.errors import MosaicError
    from mosaic.hosts.status import document

    try:
        doc, errors = document(resolve(flags.get("--mosaic-home"), flags.get("--roster")), agent)
    except MosaicError as exc:
        sys.stderr.write(exc.message + "\n")
        return int(exc.exit_code)
    for message in errors:
        sys.stderr.write(message + "\n")
    sys.stdout.write(json_document(doc))
    sys.stdout.flush()
    return 0


def _served(flags: dict[str, str], agent: str | None) -> tuple[int, str, str] | None:
    """The running watcher's answer (`watch/statusclient.py`), or None: answer here."""
    from mosaic.config.locate import home_and_roster
    from mosaic.watch.statusclient import ask

    home, roster = home_and_roster(flags.get("--mosaic-home"), flags.get("--roster"), os.environ)
    return ask(home, roster, agent)
