"""Thin click layer: parse, call the library, render.

`main` answers `mosaic --version`, `fleet validate` of an unchanged roster,
`fleet status --json`, `fleet events --json`, `fleet send --queue` and a TAB for agent or
runtime names before importing click (a third of a bare interpreter's start-up on its own),
so the most common health checks, scripts and completions stay near interpreter speed.
Each fast path answers exactly as the click command would, or returns None and leaves the
argv to click. For `fleet status` (and `fleet outbox`) of a fleet with hosts, the hosts are
asked before click loads (`hosts.prefetch`).
"""

from __future__ import annotations

import os
import sys

# click's completion instruction variable for a program named `mosaic`.
COMPLETE_VAR = "_MOSAIC_COMPLETE"


def main() -> int | None:
    try:
        args = sys.argv[1:]
        status = _fast(args)
        if status is not None:
            return status
        if "status" in args[-2:] or "outbox" in args[-3:]:
            # A fleet with hosts: they start answering while click loads (docs/hosts.md).
            from mosaic.hosts import prefetch

            prefetch.start(args)
        from mosaic.cli.main import main as click_main

        return click_main()
    except KeyboardInterrupt:  # before click took over, or after it let go
        return interrupted()


def _fast(args: list[str]) -> int | None:
    if os.environ.get(COMPLETE_VAR):
        # click's completion protocol: the words come from the environment, argv is unused.
        from mosaic.cli import quickcomplete

        return quickcomplete.run()
    if args == ["--version"]:
        from mosaic import __version__

        sys.stdout.write(f"mosaic {__version__}\n")
        return 0
    if "--queue" in args and "send" in args:
        from mosaic.cli import quicksend

        status = quicksend.run(args)
        if status is not None:
            return status
    if args[-1:] == ["validate"]:
        from mosaic.cli import quickvalidate

        return quickvalidate.run(args)
    if "--json" in args and "status" in args:
        from mosaic.cli import quickstatus

        return quickstatus.run(args)
    if "--json" in args and "events" in args:
        from mosaic.cli import quickevents

        return quickevents.run(args)
    return None


def interrupted() -> int:
    """Ctrl-C: the one line on stderr and exit 130. Whatever was under way stopped at a safe
    point: files are replaced atomically, locks are released with their descriptors, and
    lock waits are abandoned without entering. On a terminal the line starts after the
    `^C` the terminal echoed."""
    from mosaic.errors import ExitCode

    sys.stderr.write(("\n" if sys.stderr.isatty() else "") + "interrupted\n")
    sys.stderr.flush()
    return int(ExitCode.INTERRUPTED)
