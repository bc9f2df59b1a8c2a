"""Which panes' screens changed since the last look: learned from tmux first, then only
those panes are captured (docs/architecture.md, "watcher").

One `list-panes -a` per look gives every pane's fields plus two change signs tmux keeps
anyway: `window_activity` (the time of the window's last output, in whole seconds) and
`history_size`. A pane is captured when any of its fields moved, or when its last output
may be newer than its last capture: tmux keeps whole seconds, so a pane whose activity
second is not older than the second of its last capture is captured again (for at most a
second after it falls silent). A look that finds nothing changed captures nothing.

`ChangeDetector` is the reusable part (the watcher uses it; the web dashboard can stream
screen changes with it): give it a source of marks and captures, ask `look()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mosaic.tmux.client import SEP, Tmux
from mosaic.tmux.control import ControlClient, ControlError
from mosaic.tmux.panes import PANE_FIELDS, Pane, capture_many, int_or_zero

MARK_FIELDS = (*PANE_FIELDS, "window_activity", "history_size")
_ROW = "\x1e"  # starts every row of a control-mode reply, so a row is never taken for a frame


@dataclass(frozen=True)
class PaneMark:
    """A pane as `list-panes` shows it, with its change signs."""

    pane: Pane
    activity: int  # window_activity: last output, whole seconds
    history: int

    def fields(self) -> tuple[object, ...]:
        """Everything but the activity second, compared as a whole."""
        p = self.pane
        return (p.id, p.pid, p.command, p.dead, p.in_mode, p.cursor_x, p.cursor_y, p.width,
                self.history)  # fmt: skip


def parse_marks(rows: list[list[str]]) -> dict[str, PaneMark]:
    """Rows of MARK_FIELDS -> the first pane of each session."""
    out: dict[str, PaneMark] = {}
    n = len(PANE_FIELDS)
    for row in rows:
        if len(row) != len(MARK_FIELDS):
            continue
        mark = PaneMark(Pane.from_row(row[:n]), int_or_zero(row[n]), int_or_zero(row[n + 1]))
        out.setdefault(mark.pane.session, mark)
    return out


@dataclass(frozen=True)
class Seen:
    """The last capture of a pane."""

    mark: PaneMark
    screen: str
    at: float  # wall-clock time of the capture


def to_capture(
    seen: Mapping[str, Seen], marks: Mapping[str, PaneMark], wanted: Collection[str]
) -> list[str]:
    """The sessions (among `wanted`) whose screen may differ from its last capture."""
    out = []
    for session in wanted:
        mark = marks.get(session)
        if mark is None or mark.pane.dead:
            continue
        last = seen.get(session)
        if (
            last is None
            or last.mark.fields() != mark.fields()
            or mark.activity >= int(last.at)
        ):
            out.append(session)
    return out


@dataclass(frozen=True)
class Look:
    """One look at the server: every pane, and the screens that were captured."""

    at: float
    server_up: bool
    marks: Mapping[str, PaneMark] = field(default_factory=dict)
    screens: Mapping[str, str] = field(default_factory=dict)  # captured now, by session
    changed: frozenset[str] = frozenset()  # captured and different from the last capture

    @property
    def panes(self) -> dict[str, Pane]:
        return {s: m.pane for s, m in self.marks.items()}


class Source(Protocol):
    def marks(self) -> dict[str, PaneMark] | None: ...

    def capture(self, pane_ids: list[str]) -> dict[str, str]: ...


class TmuxSource:
    """Marks through a control-mode client when one can be had (else one `tmux` process per
    look); captures through one chained `capture-pane` call."""

    def __init__(self, tmux: Tmux, control: ControlClient | None, escapes: bool = False) -> None:
        self.tmux = tmux
        self.control = control
        self.escapes = escapes
        self._retry_at = 0.0

    def marks(self) -> dict[str, PaneMark] | None:
        control = self.control
        if control is not None:
            now = time.monotonic()
            if not control.connected and now >= self._retry_at:
                try:
                    control.open()
                except (ControlError, OSError):
                    self._retry_at = now + 2.0
            if control.connected:
                fmt = _ROW + SEP.join("#{" + f + "}" for f in MARK_FIELDS)
                try:
                    lines = control.command(f"list-panes -a -F '{fmt}'")
                except ControlError:
                    self._retry_at = time.monotonic() + 1.0
                else:
                    return parse_marks([ln[1:].split(SEP) for ln in lines if ln[:1] == _ROW])
        rows = self.tmux.query(MARK_FIELDS, "list-panes", "-a")
        return None if rows is None else parse_marks(rows)

    def capture(self, pane_ids: list[str]) -> dict[str, str]:
        return capture_many(self.tmux, pane_ids, escapes=self.escapes)


class ChangeDetector:
    """Remembers the last capture of each pane; `look()` captures only what may have
    changed and says which screens did."""

    def __init__(self, source: Source, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = clock
        self.seen: dict[str, Seen] = {}

    def look(self, wanted: Collection[str]) -> Look:
        now = self.clock()
        marks = self.source.marks()
        if marks is None:
            self.seen.clear()
            return Look(now, False)
        sessions = to_capture(self.seen, marks, wanted)
        by_id = {marks[s].pane.id: s for s in sessions}
        captured = self.source.capture(list(by_id)) if by_id else {}
        screens: dict[str, str] = {}
        changed = set()
        for pane_id, text in captured.items():
            session = by_id.get(pane_id)
            if session is None:
                continue
            screens[session] = text
            last = self.seen.get(session)
            if last is None or last.screen != text or last.mark.pane.pid != marks[session].pane.pid:
                changed.add(session)
            self.seen[session] = Seen(marks[session], text, now)
        for session in list(self.seen):
            if session not in marks:
                del self.seen[session]
        return Look(now, True, marks, screens, frozenset(changed))
