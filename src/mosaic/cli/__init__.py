"""Thin click layer: parse, call the library, render.

`main` answers `mosaic --version`, and `fleet validate` of an unchanged roster, before
importing click (a third of a bare interpreter's start-up on its own), so the most common
health checks stay near interpreter speed; for `fleet status` of a fleet with hosts it
starts asking the hosts first (`hosts.prefetch`).
"""

from __future__ import annotations

import sys


def main() -> int | None:
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
    if "status" in args[-2:]:
        # A fleet with hosts: they start answering while click loads (docs/hosts.md).
        from mosaic.hosts import prefetch

        prefetch.start(args)
    from mosaic.cli.main import main as click_main

    return click_main()
