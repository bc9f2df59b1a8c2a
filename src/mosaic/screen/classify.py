"""Read an agent's visible screen: what it is doing, and what sits in its input.

Pure functions over a captured pane (`tmux capture-pane -p`: no escapes, no colour). Both
`status` (activity) and `send` (proof of acceptance) use this module, so they never disagree.

The central difficulty is that a screen shows history as well as state: the conversation
above the input may quote any signature ("esc to interrupt", "Do you want to proceed?"), and
Codex even repeats the last submitted message in its footer. So signatures are never searched
over the whole pane. Each profile first finds the *live region* of the screen, and only those
lines count:

* ``codex``: the input is the bottom-most line starting with ``›`` (``»`` at some effort
  levels) plus its indented continuation lines; the footer is what follows the last blank
  line below it. Signatures count in the footer and in the block of non-blank lines directly
  above the input (where Codex draws ``• Working (… esc to interrupt)``). The input lines
  themselves never count: typed text is not state.
* ``claude``: the input is the box between the last two ``─`` rules whose first line starts
  with ``❯``. Signatures count in the footer below the box and in the lines directly above it
  that Claude Code draws itself (a spinner glyph in column 0, ``⎿`` notes); conversation
  lines (``● reply``, ``❯ prompt``, indented reply text) are skipped. Without a box (a
  permission dialog, the trust dialog, the theme picker) the region is everything below the
  last rule, and the screen can never be idle.
* ``gemini``: the input is the last ``│ > …│`` line of the bordered box.
* ``generic`` (shell, the demo agent, aider, opencode, custom runtimes): the input is the
  cursor line (with the rows it wrapped from). Busy/approval/queued signatures count from
  `CONTEXT_ROWS` rows above the cursor to the bottom of the screen; the ready signature
  counts on the cursor line and below it (a prompt scrolled up is history, not state).

Priority: awaiting_approval > busy > idle > unknown. Approval wins because an agent waiting
for the operator is stuck no matter what else is drawn; busy beats idle because the Claude
input box is drawn even while it works.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from mosaic.config.runtimes import Runtime

CONTEXT_ROWS = 6
"""How many rows above the input (or cursor) still describe the present, not the past."""

FRAGMENT_CHARS = 24
"""Length of the (whitespace-free) message fragment looked for in a generic input line."""

PASTE_PLACEHOLDER = re.compile(r"\[Pasted (?:text|content|Content)\b[^\]]*\]")
"""Claude Code `[Pasted text #1 +40 lines]`, Codex `[Pasted Content 2048 chars]`."""

CODEX_PLACEHOLDERS = frozenset(
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

_CODEX_INPUT = re.compile(r"^[›»](?: |$)")
_CODEX_EMPTY_HINT = re.compile(r"\? for shortcuts")
_CLAUDE_PROMPT = re.compile(r"^❯[\u00a0 ]?")
_CLAUDE_PLACEHOLDER = re.compile(r'^Try "[^"]*"$')
_GEMINI_INPUT = re.compile(r"^\s*│ > ?(.*?)\s*│\s*$")
_GEMINI_CONT = re.compile(r"^\s*│   ?(.*?)\s*│\s*$")
_GEMINI_PLACEHOLDER = re.compile(r"^Type your message")


class Activity(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    AWAITING_APPROVAL = "awaiting_approval"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Screen:
    """The visible pane. `width` is the pane width when known (0: guess from the lines)."""

    lines: tuple[str, ...]
    cursor_x: int = 0
    cursor_y: int = 0
    width: int = 0

    @classmethod
    def from_capture(
        cls,
        text: str,
        cursor_x: int | None = None,
        cursor_y: int | None = None,
        width: int = 0,
    ) -> Screen:
        """Build from `capture-pane -p` output, whose every line ends in a newline.

        Without a cursor position (recorded fixtures) the cursor is put at the end of the last
        non-blank line, which is where a line-oriented program leaves it.
        """
        if text.endswith("\n"):
            text = text[:-1]
        lines = tuple(line.rstrip("\r") for line in text.split("\n"))
        if cursor_y is None:
            cursor_y = max((i for i, line in enumerate(lines) if line.strip()), default=0)
        if cursor_x is None:
            # In cells, like tmux's cursor_x (a wide character takes two).
            cursor_x = _cells(lines[cursor_y].rstrip(" ")) if cursor_y < len(lines) else 0
        return cls(lines=lines, cursor_x=cursor_x, cursor_y=cursor_y, width=width)

    def row(self, index: int) -> str:
        return self.lines[index] if 0 <= index < len(self.lines) else ""


@dataclass(frozen=True)
class Classification:
    activity: Activity
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class InputCheck:
    """Whether a message still sits in the input; truthy when it does.

    `region_found` is False when no input region could be found at all (a dialog covers it),
    which is different from "the input is there and the message is not in it".
    """

    present: bool
    evidence: tuple[str, ...]
    region_found: bool = True

    def __bool__(self) -> bool:
        return self.present


@dataclass(frozen=True)
class _Layout:
    """Where things are on one screen, for one runtime profile (row indices)."""

    input_rows: tuple[int, ...] | None
    input_text: str | None
    status_rows: tuple[int, ...]
    ready_rows: tuple[int, ...]
    # True when a runtime profile (not the generic cursor rule) read this screen: then the
    # input region itself is the idle sign, and its absence means "not idle".
    profiled: bool = True


@lru_cache(maxsize=256)
def compile_signature(pattern: str) -> re.Pattern[str]:
    """Signatures come from the roster as strings; compile each once per process."""
    return re.compile(pattern, re.MULTILINE)


def _matches(pattern: str | None, screen: Screen, rows: Iterable[int]) -> tuple[str, ...]:
    if not pattern:
        return ()
    rx = compile_signature(pattern)
    return tuple(screen.row(i).rstrip() for i in rows if rx.search(screen.row(i)))


def _blank(line: str) -> bool:
    return not line.strip()


def squash(text: str) -> str:
    """Drop whitespace and control characters.

    Wrapping, indentation, the TUI's own continuation prefixes and tab rendering all change
    whitespace, never the other characters, so comparisons are made on what is left.
    """
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] != "C")


def _block_above(screen: Screen, top: int) -> list[int]:
    """The nearest block of non-blank rows above row `top`, at most CONTEXT_ROWS away."""
    rows: list[int] = []
    i = top - 1
    floor = max(0, top - CONTEXT_ROWS)
    while i >= floor and _blank(screen.row(i)):
        i -= 1
    while i >= floor and not _blank(screen.row(i)):
        rows.append(i)
        i -= 1
    return sorted(rows)


def _non_blank(screen: Screen, rows: Iterable[int]) -> tuple[int, ...]:
    return tuple(i for i in rows if not _blank(screen.row(i)))


# --- codex -------------------------------------------------------------------------------


def _codex_layout(runtime: Runtime, screen: Screen) -> _Layout:
    n = len(screen.lines)
    start = next((i for i in range(n - 1, -1, -1) if _CODEX_INPUT.match(screen.row(i))), None)
    if start is None:
        everything = _non_blank(screen, range(n))
        return _Layout(None, None, everything, ())
    last = max((i for i in range(start, n) if not _blank(screen.row(i))), default=start)
    gap = max((i for i in range(start + 1, last) if _blank(screen.row(i))), default=None)
    footer: tuple[int, ...] = ()
    if gap is None:
        input_end = last
    else:
        input_end = max(i for i in range(start, gap) if not _blank(screen.row(i)))
        footer = _non_blank(screen, range(gap + 1, n))
    input_rows = tuple(range(start, input_end + 1))
    status = (*_block_above(screen, start), *footer)
    if _matches(runtime.approval, screen, status):
        # The `›` was a dialog's selection marker, not the composer.
        return _Layout(None, None, status, ())
    parts = [_CODEX_INPUT.sub("", screen.row(start), count=1)]
    parts += [_strip_indent(screen.row(i), 2) for i in input_rows[1:]]
    text = "\n".join(parts).rstrip()
    empty_hint = not footer or any(_CODEX_EMPTY_HINT.search(screen.row(i)) for i in footer)
    if text.strip() in CODEX_PLACEHOLDERS and empty_hint:
        text = ""
    return _Layout(input_rows, text, status, (*input_rows, *footer))


def _strip_indent(line: str, width: int) -> str:
    k = 0
    while k < width and k < len(line) and line[k] in " \u00a0":
        k += 1
    return line[k:].rstrip()


# --- claude ------------------------------------------------------------------------------


def _is_rule(line: str) -> bool:
    s = line.strip()
    return len(s) >= 10 and s.count("─") >= 0.8 * len(s)


def _claude_own_line(line: str) -> bool:
    """Lines Claude Code draws about its state (spinner, `⎿` notes), not conversation text."""
    if _blank(line):
        return False
    first = line[0]
    if first in " \u00a0":
        return line.lstrip().startswith("⎿")
    return first not in "●❯⏺>"


def _claude_layout(runtime: Runtime, screen: Screen) -> _Layout:
    n = len(screen.lines)
    rules = [i for i in range(n) if _is_rule(screen.row(i))]
    if len(rules) >= 2:
        top, bottom = rules[-2], rules[-1]
        if bottom - top >= 2 and _CLAUDE_PROMPT.match(screen.row(top + 1)):
            input_rows = tuple(range(top + 1, bottom))
            parts = [_CLAUDE_PROMPT.sub("", screen.row(top + 1), count=1).rstrip()]
            parts += [_strip_indent(screen.row(i), 2) for i in input_rows[1:]]
            text = "\n".join(parts).rstrip()
            if _CLAUDE_PLACEHOLDER.match(text):
                text = ""
            footer = _non_blank(screen, range(bottom + 1, n))
            above = tuple(
                i for i in range(max(0, top - CONTEXT_ROWS), top) if _claude_own_line(screen.row(i))
            )
            return _Layout(input_rows, text, (*above, *footer), (*input_rows, *footer))
    # No input box: a dialog owns the screen. Only what is below the last rule is live.
    start = rules[-1] + 1 if rules else 0
    live = _non_blank(screen, range(start, n))
    return _Layout(None, None, live, ())


# --- gemini ------------------------------------------------------------------------------


def _gemini_layout(runtime: Runtime, screen: Screen) -> _Layout:
    n = len(screen.lines)
    start = next((i for i in range(n - 1, -1, -1) if _GEMINI_INPUT.match(screen.row(i))), None)
    if start is None:
        return _generic_layout(runtime, screen)
    rows = [start]
    i = start + 1
    while i < n and (m := _GEMINI_CONT.match(screen.row(i))) and m.group(1):
        rows.append(i)
        i += 1
    first = _GEMINI_INPUT.match(screen.row(start))
    parts = [first.group(1) if first else ""]
    for r in rows[1:]:
        m = _GEMINI_CONT.match(screen.row(r))
        parts.append(m.group(1) if m else "")
    text = "\n".join(parts).rstrip()
    if _GEMINI_PLACEHOLDER.match(text):
        text = ""
    footer = _non_blank(screen, range(rows[-1] + 1, n))
    above = _non_blank(screen, range(max(0, start - CONTEXT_ROWS), start))
    return _Layout(tuple(rows), text, (*above, *footer), (*rows, *footer))


# --- generic -----------------------------------------------------------------------------


def _wrapped(screen: Screen, index: int) -> bool:
    """Whether row `index` continues on the next row (it filled the pane's width).

    Only decided when the pane width is known: guessing it from the longest line joins
    unrelated rows. Without it, `_generic_in_input` still catches a fragment cut by the wrap.
    """
    line = screen.row(index)
    return bool(line) and screen.width > 0 and _cells(line) >= screen.width


def _cells(text: str) -> int:
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _char_index(line: str, cells: int) -> int:
    """How many characters of `line` lie left of cell column `cells` (tmux's cursor_x)."""
    used = 0
    for index, ch in enumerate(line):
        if used >= cells:
            return index
        used += _cells(ch)
    return len(line)


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


def _generic_layout(runtime: Runtime, screen: Screen) -> _Layout:
    n = len(screen.lines)
    rows = _cursor_rows(screen)
    joined = "".join(screen.row(i) for i in rows)
    text = joined
    if runtime.ready:
        m = compile_signature(runtime.ready).search(joined)
        if m:
            text = joined[m.end() :]
    status = _non_blank(screen, range(max(0, rows[0] - CONTEXT_ROWS), n))
    ready_rows = (*rows, *range(rows[-1] + 1, n))
    return _Layout(rows, text.rstrip(), status, ready_rows, profiled=False)


def _layout(runtime: Runtime, screen: Screen) -> _Layout:
    if runtime.profile == "codex":
        return _codex_layout(runtime, screen)
    if runtime.profile == "claude":
        return _claude_layout(runtime, screen)
    if runtime.profile == "gemini":
        return _gemini_layout(runtime, screen)
    return _generic_layout(runtime, screen)


# --- public API --------------------------------------------------------------------------


def classify(runtime: Runtime, screen: Screen) -> Classification:
    """Decide the activity; the evidence is the screen lines that decided it."""
    layout = _layout(runtime, screen)
    hits = _matches(runtime.approval, screen, layout.status_rows)
    if hits:
        return Classification(Activity.AWAITING_APPROVAL, hits)
    hits = _matches(runtime.busy, screen, layout.status_rows) or _matches(
        runtime.queued, screen, layout.status_rows
    )
    if hits:
        return Classification(Activity.BUSY, hits)
    if layout.profiled:
        if layout.input_rows is None:
            return Classification(Activity.UNKNOWN, ())
        rows = tuple(screen.row(i).rstrip() for i in layout.input_rows)
        extra = _matches(runtime.ready, screen, layout.ready_rows)
        return Classification(Activity.IDLE, tuple(dict.fromkeys((*rows, *extra))))
    hits = _matches(runtime.ready, screen, layout.ready_rows)
    if hits:
        return Classification(Activity.IDLE, hits)
    return Classification(Activity.UNKNOWN, ())


def input_text(runtime: Runtime, screen: Screen) -> str | None:
    """The text in the runtime's input now ("" when empty), None when no input is visible.

    Continuation lines lose the TUI's indentation and are joined with line feeds; a
    placeholder (Codex's dim suggestion, Gemini's `Type your message`) reads as "".
    """
    return _layout(runtime, screen).input_text


def queued(runtime: Runtime, screen: Screen) -> tuple[str, ...]:
    """The runtime's own sign that a message was queued behind a running turn (or ())."""
    return _matches(runtime.queued, screen, _layout(runtime, screen).status_rows)


def message_in_input(runtime: Runtime, screen: Screen, message: str) -> InputCheck:
    """Whether `message` still sits in the runtime's input (so it was not submitted).

    Comparison is on `squash`ed text (no whitespace), because the TUI wraps, indents,
    truncates and re-renders tabs. A paste placeholder in the input counts as the message.
    Profiled runtimes: the input holds the message's head or tail, or the input is itself a
    fragment of the message (partly typed, or scrolled so only part shows). Generic runtimes:
    the message's tail is on the cursor line, see `_generic_in_input`.
    """
    wanted = squash(message)
    layout = _layout(runtime, screen)
    if layout.input_rows is None or layout.input_text is None:
        return InputCheck(False, (), region_found=False)
    rows = tuple(screen.row(i).rstrip() for i in layout.input_rows)
    if not wanted:
        return InputCheck(False, rows)
    if not layout.profiled:
        return _generic_in_input(runtime, screen, message, wanted)
    text = layout.input_text
    if PASTE_PLACEHOLDER.search(text):
        return InputCheck(True, rows)
    have = squash(text)
    if not have:
        return InputCheck(False, rows)
    head, tail = wanted[:FRAGMENT_CHARS], wanted[-FRAGMENT_CHARS:]
    fragment = len(have) >= min(len(wanted), 8) and have in wanted
    return InputCheck(head in have or tail in have or fragment, rows)


def _generic_in_input(runtime: Runtime, screen: Screen, message: str, wanted: str) -> InputCheck:
    """The generic rule: the message is in the input while its tail is on the cursor line.

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
            line = line[: _char_index(line, screen.cursor_x)]
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
