"""Gemini CLI 0.61 (docs/runtimes.md, "Gemini CLI"), an inline TUI: the transcript, then
the live area at the bottom of the screen:

     ⠹ Thinking... (esc to cancel, 0s)              ? for shortcuts   <- status, above the rule
    ──────────────────────────────────────────────────────────────   <- full-width rule
     Shift+Tab to accept edits                                        <- mode line
     > first line of the input                                        <- the input
       further lines, indented 3
     workspace (/directory)        sandbox        /model              <- footer
     ~/work                        no sandbox     gemini-2.5-flash

(with one blank row before the input and one before the footer). The transcript echoes
every submitted message as ` > text` too, so only what is under the LAST full-width rule can
be the input. An Enter folded into a paste (or pressed within ~30 ms of typed text) becomes
an empty last input line: an extra blank row before the footer, which is part of the input,
so the text still reads as unsent. A dialog (tool approval, first-run screens) replaces the
rule, the input and the footer with a rounded box; then only the bottom block of the screen
is live, and the screen can never be idle.
"""

from __future__ import annotations

import re

from mosaic.config.runtimes import Runtime
from mosaic.screen.model import (
    Layout,
    Screen,
    blank,
    block_above,
    bottom_block,
    is_plain_rule,
    last_row,
    matches,
    non_blank,
    strip_indent,
)

_PROMPT = re.compile(r"^ >(?: |$)")
_PLACEHOLDER = re.compile(r"^ {2}Type your message")
"""What follows ` >` in an empty input: the dim placeholder starts 3 columns in, typed text 1."""
_CONTINUATION = "   "
_MODE_ROWS = 3
"""At most this many rows (mode line, blank) between the rule and the input."""
_FOOTER_ROWS = 3
_STATUS_WINDOW = 12
"""Rows above the rule that may hold a `Queued` message, its lines and the spinner."""
_DIALOG_ROWS = 40
_BOX = ("╭", "│", "╰")


def layout(runtime: Runtime, screen: Screen) -> Layout:
    n = len(screen.lines)
    rule = last_row(screen, is_plain_rule)
    if rule is None:
        return _dialog(screen)
    prompt = next(
        (i for i in range(rule + 1, min(n, rule + 2 + _MODE_ROWS)) if _PROMPT.match(screen.row(i))),
        None,
    )
    if prompt is None:
        return _dialog(screen)
    first = screen.row(prompt)[3:].rstrip()
    end, footer = prompt, None
    if _PLACEHOLDER.match(first):
        first = ""
        footer = next((i for i in range(prompt + 1, n) if not blank(screen.row(i))), None)
    else:
        for i in range(prompt + 1, n):
            line = screen.row(i)
            if blank(line):
                continue
            if not line.startswith(_CONTINUATION):
                footer = i
                break
            end = i
        if footer is not None:
            # One blank row separates the input from the footer; more are empty input lines.
            end = max(end, footer - 2)
    after = non_blank(screen, range(end + 1, n))
    if len(after) > _FOOTER_ROWS or any(screen.row(i).lstrip().startswith(_BOX) for i in after):
        return _dialog(screen)  # not the live area: something is drawn below it
    input_rows = tuple(range(prompt, end + 1))
    parts = [first, *(strip_indent(screen.row(i), len(_CONTINUATION)) for i in input_rows[1:])]
    text = "\n".join(parts).rstrip()
    above = block_above(screen, rule)
    mode = non_blank(screen, range(rule + 1, prompt))
    # A message sent while busy waits above the spinner; without a spinner nothing waits.
    queued_rows = _blocks_above(screen, rule) if matches(runtime.busy, screen, above) else ()
    return Layout(
        input_rows,
        text,
        (*above, *mode),
        (*input_rows, *above, *after),
        queued_rows=queued_rows,
    )


def _blocks_above(screen: Screen, top: int) -> tuple[int, ...]:
    """Non-blank rows above row `top`, across single blank rows, within `_STATUS_WINDOW`:
    the live area over the rule. Two blank rows in a row end it (the transcript is further
    up)."""
    rows: list[int] = []
    i = top - 1
    floor = max(0, top - _STATUS_WINDOW)
    while i >= floor:
        if not blank(screen.row(i)):
            rows.append(i)
        elif i == 0 or blank(screen.row(i - 1)):
            break
        i -= 1
    return tuple(sorted(rows))


def _dialog(screen: Screen) -> Layout:
    return Layout(None, None, bottom_block(screen, _DIALOG_ROWS), ())
