"""The generic profile: shell, the demo agent, custom runtimes (docs/runtimes.md, "generic").

The input is the cursor line (with the rows it wrapped from). Busy/approval/queued
signatures count from `CONTEXT_ROWS` rows above the cursor to the bottom of the screen; the
ready signature counts on the cursor line and below it (a prompt scrolled up is history, not
state). A line-oriented program leaves the cursor where its state is, which is what makes
this rule work without knowing the program's layout.
"""

from __future__ import annotations

from mosaic.config.runtimes import Runtime
from mosaic.screen.model import (
    CONTEXT_ROWS,
    FRAGMENT_CHARS,
    InputCheck,
    Layout,
    Screen,
    cells,
    char_index,
    compile_signature,
    non_blank,
    squash,
)


def _wrapped(screen: Screen, index: int) -> bool:
    """Whether row `index` continues on the next row (it filled the pane's width).

    Only decided when the pane width is known: guessing it from the longest line joins
    unrelated rows. Without it, `in_input` still catches a fragment cut by the wrap.
    """
    line = screen.row(index)
    return bool(line) and screen.width > 0 and cells(line) >= screen.width


def _ends_at_cursor(screen: Screen, y: int, at_cursor: str, last: str, breaks: int) -> bool:
    """Whether the cursor row (cut at the cursor) is where the message ends.

    Rows above may hold the tail as history (a submitted multi-line message echoed above a
    reply and the next prompt), and rows a TUI repainted keep stale text after their
    end, so the tail alone proves little; the cursor row decides. A message ending in line
    breaks leaves nothing on it; otherwise it ends with the message's last line (or holds
    the end of that line, when the line wrapped). An empty cursor row right below a full
    row is the cursor waiting to wrap.
    """
    if breaks:
        return not at_cursor
    if not at_cursor:
        return y > 0 and _wrapped(screen, y - 1)
    return not last or at_cursor.endswith(last) or last.endswith(at_cursor)


def _cursor_rows(screen: Screen) -> tuple[int, ...]:
    """The cursor row and the rows above it that wrapped into it."""
    y = min(max(screen.cursor_y, 0), max(len(screen.lines) - 1, 0))
    start = y
    while start > 0 and _wrapped(screen, start - 1):
        start -= 1
    return tuple(range(start, y + 1))


def layout(runtime: Runtime, screen: Screen) -> Layout:
    n = len(screen.lines)
    rows = _cursor_rows(screen)
    joined = "".join(screen.row(i) for i in rows)
    text = joined
    if runtime.ready:
        m = compile_signature(runtime.ready).search(joined)
        if m:
            text = joined[m.end() :]
    status = non_blank(screen, range(max(0, rows[0] - CONTEXT_ROWS), n))
    ready_rows = (*rows, *range(rows[-1] + 1, n))
    return Layout(rows, text.rstrip(), status, ready_rows, profiled=False)


def in_input(runtime: Runtime, screen: Screen, message: str, wanted: str) -> InputCheck:
    """The message is in the input while its tail is on the cursor line.

    The tail is the last FRAGMENT_CHARS non-space characters of the whole message, so a
    short or common last line (`EOF`, `}`) is joined to the lines before it; the region
    covers as many rows above the cursor as the line breaks that tail spans (plus trailing
    empty lines, which leave the cursor below the text, plus rows the pane wrapped). Rows
    starting with the runtime's `ready` prompt (the demo's `demo> `) lose that prefix. The
    cursor row, cut at the cursor, must be where the message ends (`_ends_at_cursor`), so a
    submitted multi-line message echoed above the next prompt does not look typed; a
    message shorter than 8 characters must end right at the cursor, so that a one-letter
    message is not "found" in some unrelated prompt.
    """
    tail = wanted[-FRAGMENT_CHARS:]
    body = message.rstrip()
    trailing_breaks = message[len(body) :].count("\n")
    seen = 0
    span_breaks = 0
    for ch in reversed(body):
        if ch == "\n":
            span_breaks += 1
        elif squash(ch):
            seen += 1
            if seen >= len(tail):
                break
    y = min(max(screen.cursor_y, 0), max(len(screen.lines) - 1, 0))
    start, breaks = y, span_breaks + trailing_breaks
    while start > 0:
        if _wrapped(screen, start - 1):
            start -= 1
        elif breaks > 0:
            breaks -= 1
            start -= 1
        else:
            break
    prompt = compile_signature(runtime.ready) if runtime.ready else None
    pieces: list[str] = []
    for i in range(start, y + 1):
        line = screen.row(i)
        if i == y:
            line = line[: char_index(line, screen.cursor_x)]
        if prompt is not None:
            m = prompt.match(line)
            if m and m.end() > 0:
                line = line[m.end() :]
        pieces.append(squash(line))
    region = "".join(pieces)
    if len(wanted) < 8:
        present = region.endswith(tail)
    else:
        # A wrap we could not see (unknown width) may cut the tail: the row above then ends
        # with its head and the region starts with the rest. The new prompt that follows a
        # submit never starts with the message's last characters, so this stays safe.
        above = squash(screen.row(start - 1)) if start > 0 else ""
        present = tail in region or any(
            above.endswith(tail[:k]) and region.startswith(tail[k:]) for k in range(1, len(tail))
        )
    present = present and _ends_at_cursor(
        screen, y, pieces[-1], squash(body.rsplit("\n", 1)[-1]), trailing_breaks
    )
    evidence = tuple(screen.row(i).rstrip() for i in range(start, y + 1) if screen.row(i).strip())
    return InputCheck(present, evidence)
