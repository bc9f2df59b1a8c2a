"""Thin click layer: parse, call the library, render.

`main` answers `mosaic --version`, `fleet validate` of an unchanged roster, and a TAB for
agent or runtime names, before importing click (a third of a bare interpreter's start-up on
its own), so the most common health checks and completions stay near interpreter speed.
"""

from __future__ import annotations

import os
import sys

# click's completion instruction variable for a program named `mosaic`.
COMPLETE_VAR = "_MOSAIC_COMPLETE"


def main() -> int | None:
    args = sys.argv[1:]
    if os.environ.get(COMPLETE_VAR):
        # click's completion protocol: the words come from the environment, argv is unused.
        from mosaic.cli import quickcomplete

        status = quickcomplete.run()
        if status is not None:
            return status
    elif args == ["--version"]:
        from mosaic import __version__

        sys.stdout.write(f"mosaic {__version__}\n")
        return 0
    elif args[-1:] == ["validate"]:
        from mosaic.cli import quickvalidate

        status = quickvalidate.run(args)
        if status is not None:
            return status
    if "events" in args and "--json" in args:
        from mosaic.cli import quickevents

        status = quickevents.run(args)
        if status is not None:
            return status
    from mosaic.cli.main import main as click_main

    return click_main()
