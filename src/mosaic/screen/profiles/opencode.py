"""opencode 1.18 (docs/runtimes.md, "opencode"), a full-screen TUI.

The input is a box whose left edge is `┃` and whose bottom edge is `╹▀▀▀…`; the row right
above the bottom edge is the agent line (`┃  Build · Mock Model Mock LLM`), and above that
the box holds the text between one empty `┃` row above and one below it, 3 columns after the
`┃`. The box ends at the last column of the `╹▀▀▀` row: at 160 columns a sidebar (session
title, context, cost) shares the same screen rows to the right of it, so rows are cut there.
The transcript echoes each message as a `┃` block too, so only the box that ends in the
bottom edge is the input.

Fresh start: the home view (logo, a centred box with the `Ask anything… "…"` placeholder).
After the first message: the session view (transcript left, sidebar right, box at the
bottom). Busy shows in the footer under the box (`⬝⬝⬝■■■■■  esc interrupt`); a message sent
while busy waits in the transcript with a `┃   QUEUED` line. A permission dialog replaces
the box (no bottom edge): then only the bottom block of the screen is live.
"""

from __future__ import annotations

import re

from mosaic.config.runtimes import Runtime
from mosaic.screen.model import Layout, Screen, bottom_block, last_row, non_blank

_EDGE = re.compile(r"^\s*╹▀+")
_BAR = "┃"
_PLACEHOLDER = re.compile(r'^Ask anything… ".*"$')
_TEXT_COLUMN = 3
"""Text starts this many columns after the `┃`."""
_TRANSCRIPT_WINDOW = 20
"""Rows above the box where a queued message's `QUEUED` line may show."""
_DIALOG_ROWS = 20


def layout(runtime: Runtime, screen: Screen) -> Layout:
    n = len(screen.lines)
    edge = last_row(screen, _EDGE.match)
    if edge is None:
        return Layout(None, None, bottom_block(screen, _DIALOG_ROWS), ())
    edge_line = screen.row(edge)
    col = edge_line.index("╹")
    right = edge_line.rindex("▀") + 1
    agent = edge - 1
    if agent < 0 or not _bar_at(screen.row(agent), col):
        return Layout(None, None, bottom_block(screen, _DIALOG_ROWS), ())
    top = agent
    while top > 0 and _bar_at(screen.row(top - 1), col):
        top -= 1
    box = tuple(range(top, agent))
    lines = [screen.row(i)[col + _TEXT_COLUMN : right].rstrip() for i in box]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    text = "\n".join(lines)
    if _PLACEHOLDER.match(text):
        text = ""
    footer = non_blank(screen, range(edge + 1, n))
    transcript = non_blank(screen, range(max(0, top - _TRANSCRIPT_WINDOW), top))
    return Layout(
        box,
        text,
        footer,
        (*box, agent, *footer),
        queued_rows=transcript,
    )


def _bar_at(line: str, col: int) -> bool:
    return len(line) > col and line[col] == _BAR and not line[:col].strip()

