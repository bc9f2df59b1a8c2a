"""Claude Code 2.1 (docs/runtimes.md, "Claude Code").

The input is the box between the last two `─` rules whose first line starts with `❯`.
Signatures count in the footer below the box and in the lines directly above it that Claude
Code draws itself (a spinner glyph in column 0, `⎿` notes); conversation lines (`● reply`,
`❯ prompt`, indented reply text) are skipped. Without a box (a permission dialog, the trust
dialog, the theme picker) the region is everything below the last rule, and the screen can
never be idle.
"""

from __future__ import annotations

import re

from mosaic.config.runtimes import Runtime
from mosaic.screen.model import (
    CONTEXT_ROWS,
    Layout,
    Screen,
    blank,
    is_rule,
    non_blank,
    strip_indent,
)

_PROMPT = re.compile(r"^❯[\u00a0 ]?")
_PLACEHOLDER = re.compile(r'^Try "[^"]*"$')


def _own_line(line: str) -> bool:
    """Lines Claude Code draws about its state (spinner, `⎿` notes), not conversation text."""
    if blank(line):
        return False
    first = line[0]
    if first in " \u00a0":
        return line.lstrip().startswith("⎿")
    return first not in "●❯⏺>"


def layout(runtime: Runtime, screen: Screen) -> Layout:
    n = len(screen.lines)
    rules = [i for i in range(n) if is_rule(screen.row(i))]
    if len(rules) >= 2:
        top, bottom = rules[-2], rules[-1]
        if bottom - top >= 2 and _PROMPT.match(screen.row(top + 1)):
            input_rows = tuple(range(top + 1, bottom))
            parts = [_PROMPT.sub("", screen.row(top + 1), count=1).rstrip()]
            parts += [strip_indent(screen.row(i), 2) for i in input_rows[1:]]
            text = "\n".join(parts).rstrip()
            if _PLACEHOLDER.match(text):
                text = ""
            footer = non_blank(screen, range(bottom + 1, n))
            above = tuple(
                i for i in range(max(0, top - CONTEXT_ROWS), top) if _own_line(screen.row(i))
            )
            return Layout(input_rows, text, (*above, *footer), (*input_rows, *footer))
    # No input box: a dialog owns the screen. Only what is below the last rule is live.
    start = rules[-1] + 1 if rules else 0
    live = non_blank(screen, range(start, n))
    return Layout(None, None, live, ())
