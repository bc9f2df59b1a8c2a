"""Thin click layer: parse, call the library, render.

`main` answers `mosaic --version` before importing click (a third of a bare interpreter's
start-up on its own), so the most common health check stays near interpreter speed.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from mosaic import __version__

        sys.stdout.write(f"mosaic {__version__}\n")
        return
    from mosaic.cli.main import main as click_main

    click_main()
