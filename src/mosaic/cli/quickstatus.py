"""`mosaic fleet status [AGENT] --json` answered without click.

Scripts and dashboards poll `status --json`, and click's import alone costs about what the
two tmux round trips of a 50-agent status cost. When the argv is exactly
`fleet [--mosaic-home H] [--roster R] status [AGENT] --json` (AGENT and --json in either
order), the document is built by the same `hosts.status.document` and printed by the
same `render.json_document` as the click command, and errors end as `cli.main` ends them
(message on stderr, the error's exit code). Anything else (help, other flags, a home that
is a file or a roster that is a directory, which click refuses) returns None, and click
answers.
"""

from __future__ import annotations

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
