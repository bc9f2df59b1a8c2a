"""The values every screen reader shares, and the line helpers the profiles build on.

A profile (screen/profiles/) turns one captured pane into a `Layout`: which rows are the
input, which rows describe the present (status), which may carry the runtime's queued sign.
`classify.py` then applies the runtime's signatures to those rows only, so the conversation
on screen, which may quote any signature, never decides anything.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

CONTEXT_ROWS = 6
"""How many rows above the input (or cursor) still describe the present, not the past."""

FRAGMENT_CHARS = 24
"""Length of the (whitespace-free) message fragment looked for in an input."""


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
            cursor_x = cells(lines[cursor_y].rstrip(" ")) if cursor_y < len(lines) else 0
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
class Layout:
    """Where things are on one screen, for one runtime profile (row indices)."""

    input_rows: tuple[int, ...] | None
    input_text: str | None
    status_rows: tuple[int, ...]
    ready_rows: tuple[int, ...]
    # True when a runtime profile (not the generic cursor rule) read this screen: then the
    # input region itself is the idle sign, and its absence means "not idle".
    profiled: bool = True
    # Where the runtime's queued sign counts (opencode marks it in the transcript, not in
    # its status line); None: the status rows.
    queued_rows: tuple[int, ...] | None = None
    # Rows whose mere presence proves a turn is running (aider: output under a submitted
    # prompt, with no new prompt yet), whatever they say.
    working_rows: tuple[int, ...] = ()


@lru_cache(maxsize=256)
def compile_signature(pattern: str) -> re.Pattern[str]:
    """Signatures come from the roster as strings; compile each once per process."""
    return re.compile(pattern, re.MULTILINE)


def matches(pattern: str | None, screen: Screen, rows: Iterable[int]) -> tuple[str, ...]:
    """The rows (stripped on the right) among `rows` where `pattern` is found."""
    if not pattern:
        return ()
    rx = compile_signature(pattern)
    return tuple(screen.row(i).rstrip() for i in rows if rx.search(screen.row(i)))


def blank(line: str) -> bool:
    return not line.strip()


def squash(text: str) -> str:
    """Drop whitespace and control characters.

    Wrapping, indentation, the TUI's own continuation prefixes and tab rendering all change
    whitespace, never the other characters, so comparisons are made on what is left.
    """
    return "".join(ch for ch in text if _kept(ch))


def squash_map(text: str) -> tuple[str, list[int]]:
    """`squash(text)` and, for each of its characters, its index in `text` (so a match
    found in the squashed text can be located in the original)."""
    where = [i for i, ch in enumerate(text) if _kept(ch)]
    return "".join(text[i] for i in where), where


def _kept(ch: str) -> bool:
    return not ch.isspace() and unicodedata.category(ch)[0] != "C"


def block_above(screen: Screen, top: int, window: int = CONTEXT_ROWS) -> list[int]:
    """The nearest block of non-blank rows above row `top`, at most `window` rows away."""
    rows: list[int] = []
    i = top - 1
    floor = max(0, top - window)
    while i >= floor and blank(screen.row(i)):
        i -= 1
    while i >= floor and not blank(screen.row(i)):
        rows.append(i)
        i -= 1
    return sorted(rows)


def bottom_block(screen: Screen, limit: int) -> tuple[int, ...]:
    """The last block of non-blank rows on the screen (at most `limit` rows): where a
    full-screen dialog that replaced a TUI's input is drawn."""
    last = max((i for i, line in enumerate(screen.lines) if not blank(line)), default=None)
    if last is None:
        return ()
    first = last
    while first > 0 and last - first + 1 < limit and not blank(screen.row(first - 1)):
        first -= 1
    return tuple(range(first, last + 1))


def non_blank(screen: Screen, rows: Iterable[int]) -> tuple[int, ...]:
    return tuple(i for i in rows if not blank(screen.row(i)))


def strip_indent(line: str, width: int) -> str:
    """`line` without up to `width` leading spaces (the TUI's continuation indent)."""
    k = 0
    while k < width and k < len(line) and line[k] in " \u00a0":
        k += 1
    return line[k:].rstrip()


def is_rule(line: str) -> bool:
    """A horizontal rule, possibly with a title or corners in it (Claude Code's box edges)."""
    s = line.strip()
    return len(s) >= 10 and s.count("─") >= 0.8 * len(s)


def is_plain_rule(line: str) -> bool:
    """A row that is nothing but `─` (Gemini CLI's and aider's full-width rules), unlike the
    top edge of a box (`╭───╮`), which a dialog or a tool's output draws."""
    s = line.strip()
    return len(s) >= 10 and not s.strip("─")


def last_row(screen: Screen, test: Callable[[str], object]) -> int | None:
    """The index of the bottom-most row for which `test(row)` is true."""
    return next((i for i in range(len(screen.lines) - 1, -1, -1) if test(screen.row(i))), None)


def cells(text: str) -> int:
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def char_index(line: str, cell: int) -> int:
    """How many characters of `line` lie left of cell column `cell` (tmux's cursor_x)."""
    used = 0
    for index, ch in enumerate(line):
        if used >= cell:
            return index
        used += cells(ch)
    return len(line)
