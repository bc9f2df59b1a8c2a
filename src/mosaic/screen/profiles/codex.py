"""Codex CLI 0.171 (docs/runtimes.md, "Codex CLI").

The input is the bottom-most line starting with `›` (`»` at some effort levels) plus its
indented continuation lines; the footer is what follows the last blank line below it.
Signatures count in the footer and in the block of non-blank lines directly above the input
(where Codex draws `• Working (… esc to interrupt)`). The input lines themselves never count:
typed text is not state. Codex repeats the last submitted message in its footer, which is
why the footer is never read as input.
"""

from __future__ import annotations

import re

from mosaic.config.runtimes import Runtime
from mosaic.screen.model import Layout, Screen, blank, block_above, matches, non_blank, strip_indent

PLACEHOLDERS = frozenset(
    {
        "Ask Codex to do anything",
        "Explain this codebase",
        "Summarize recent commits",
        "Find and fix a bug in @filename",
        "Write tests for @filename",
        "Improve documentation in @filename",
        "Run /review on my current changes",
        "Implement {feature}",
    }
)
"""Dim suggestion texts Codex draws in an empty input; colour is not captured, so only the
text tells them apart from typed text (together with the `? for shortcuts` hint, which Codex
shows only while the input is empty)."""

_INPUT = re.compile(r"^[›»](?: |$)")
_EMPTY_HINT = re.compile(r"\? for shortcuts")


def layout(runtime: Runtime, screen: Screen) -> Layout:
    n = len(screen.lines)
    start = next((i for i in range(n - 1, -1, -1) if _INPUT.match(screen.row(i))), None)
    if start is None:
        everything = non_blank(screen, range(n))
        return Layout(None, None, everything, ())
    last = max((i for i in range(start, n) if not blank(screen.row(i))), default=start)
    gap = max((i for i in range(start + 1, last) if blank(screen.row(i))), default=None)
    footer: tuple[int, ...] = ()
    if gap is None:
        input_end = last
    else:
        input_end = max(i for i in range(start, gap) if not blank(screen.row(i)))
        footer = non_blank(screen, range(gap + 1, n))
    input_rows = tuple(range(start, input_end + 1))
    status = (*block_above(screen, start), *footer)
    if matches(runtime.approval, screen, status):
        # The `›` was a dialog's selection marker, not the composer.
        return Layout(None, None, status, ())
    parts = [_INPUT.sub("", screen.row(start), count=1)]
    parts += [strip_indent(screen.row(i), 2) for i in input_rows[1:]]
    text = "\n".join(parts).rstrip()
    empty_hint = not footer or any(_EMPTY_HINT.search(screen.row(i)) for i in footer)
    if text.strip() in PLACEHOLDERS and empty_hint:
        text = ""
    return Layout(input_rows, text, status, (*input_rows, *footer))
