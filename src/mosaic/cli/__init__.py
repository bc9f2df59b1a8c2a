"""Thin click layer: parse, call the library, render.

`main` answers `mosaic --version`, `fleet validate` of an unchanged roster and
`fleet status --json` before importing click (a third of a bare interpreter's start-up on
its own), so the most common health checks stay near interpreter speed.
"""

from __future__ import annotations

import sys


def main() -> int | None:
    try:
        args = sys.argv[1:]
        if args == ["--version"]:
            from mosaic import __version__

            sys.stdout.write(f"mosaic {__version__}\n")
            return 0
        if args[-1:] == ["validate"]:
            from mosaic.cli import quickvalidate

            status = quickvalidate.run(args)
            if status is not None:
                return status
        elif "status" in args and "--json" in args:
            from mosaic.cli import quickstatus

            status = quickstatus.run(args)
            if status is not None:
                return status
        from mosaic.cli.main import main as click_main

        return click_main()
    except KeyboardInterrupt:  # before click took over, or after it let go
        return interrupted()


def interrupted() -> int:
    """Ctrl-C: the one line on stderr and exit 130. Whatever was under way stopped at a safe
    point: files are replaced atomically, locks are released with their descriptors, and
    lock waits are abandoned without entering. On a terminal the line starts after the
    `^C` the terminal echoed."""
    from mosaic.errors import ExitCode

    sys.stderr.write(("\n" if sys.stderr.isatty() else "") + "interrupted\n")
    sys.stderr.flush()
    return int(ExitCode.INTERRUPTED)
