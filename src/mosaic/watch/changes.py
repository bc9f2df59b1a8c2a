"""Which panes' screens changed since the last look: learned from tmux first, then only
those panes are captured (docs/architecture.md, "watcher").

One `list-panes -a` per look gives every pane's fields plus two change signs tmux keeps
anyway: `window_activity` (the time of the window's last output, in whole seconds) and
`history_size`. A pane is captured when any of its fields moved, or when its last output
may be newer than its last capture: tmux keeps whole seconds, so a pane whose activity
second is not older than the second of its last capture is captured again (for at most a
second after it falls silent). A look that finds nothing changed captures nothing.

Each look is one `tmux` process, never a control-mode client: tmux (3.3a, and later
releases too) crashes its whole server when a control client is still identifying itself
while a session comes or goes, and a watcher that reconnects would sooner or later take
every agent down with it. What keeps the processes few is `OutputGate`: a screen changes
with its pane's output, and every output reaches the agent's transcript at once, so tmux is
asked when a transcript grew, and otherwise only every LOOK_EVERY_S.

`ChangeDetector` is the reusable part (the watcher uses it; the web dashboard streams
screen changes with it): give it a source of marks and captures, ask `look()`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from mosaic.base.fs import stamp
from mosaic.tmux.client import Tmux
from mosaic.tmux.panes import PANE_FIELDS, Pane, capture_many, int_or_zero

MARK_FIELDS = (*PANE_FIELDS, "window_activity", "history_size")
# What changes without output (a pane that died or came back, a resize) is seen this late.
LOOK_EVERY_S = 1.0


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
    """Marks from one `list-panes -a` process, captures from one chained `capture-pane`."""

    def __init__(self, tmux: Tmux, escapes: bool = False) -> None:
        self.tmux = tmux
        self.escapes = escapes

    def marks(self) -> dict[str, PaneMark] | None:
        rows = self.tmux.query(MARK_FIELDS, "list-panes", "-a")
        return None if rows is None else parse_marks(rows)

    def capture(self, pane_ids: list[str]) -> dict[str, str]:
        return capture_many(self.tmux, pane_ids, escapes=self.escapes)


class OutputGate:
    """Is a look due? When an agent's transcript grew or was rotated since the last one,
    or LOOK_EVERY_S passed (see the module doc). `log_of` names an agent's transcript."""

    def __init__(
        self,
        log_of: Callable[[str], Path],
        every_s: float = LOOK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log_of = log_of
        self.every_s = every_s
        self.clock = clock
        self._seen: tuple[tuple[str, tuple[int, int, int] | None], ...] | None = None
        self._at = -math.inf

    def __call__(self, names: Collection[str]) -> bool:
        now = self.clock()
        seen = tuple((n, stamp(self.log_of(n))) for n in names)
        if seen == self._seen and now - self._at < self.every_s:
            return False
        # Taken before the look it allows: output that lands during the look makes the
        # next one due.
        self._seen, self._at = seen, now
        return True


class ChangeDetector:
    """Remembers the last capture of each pane; `look()` captures only what may have
    changed and says which screens did."""

    def __init__(
        self,
        source: Source,
        clock: Callable[[], float] = time.time,
        gate: Callable[[Collection[str]], bool] | None = None,
    ) -> None:
        """`gate(wanted)`: may anything have changed since the last look? When it says no,
        `look()` asks tmux nothing and reports the last look's panes, unchanged."""
        self.source = source
        self.clock = clock
        self.gate = gate
        self.seen: dict[str, Seen] = {}
        self.last: Look | None = None

    def look(self, wanted: Collection[str], force: bool = False) -> Look:
        """`force`: ask tmux whatever the gate says (a screen someone wants now)."""
        now = self.clock()
        due = self.gate is None or self.gate(wanted)
        if not (due or force) and self.last is not None:
            return replace(self.last, at=now, screens={}, changed=frozenset())
        self.last = self._look(now, wanted)
        return self.last

    def _look(self, now: float, wanted: Collection[str]) -> Look:
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
