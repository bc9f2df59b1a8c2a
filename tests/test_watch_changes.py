"""When the watcher asks tmux (watch/changes.py): only when an agent's transcript moved, or
once a second, and then it captures only what may have changed. Pure parts with files and a
fake clock and source; the real tmux side is in test_watch_lifecycle.py."""

from __future__ import annotations

import os
from pathlib import Path

from mosaic.tmux.panes import Pane
from mosaic.watch.changes import ChangeDetector, OutputGate, PaneMark


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gate_for(tmp_path: Path, clock: Clock) -> OutputGate:
    return OutputGate(lambda name: tmp_path / f"{name}.log", every_s=1.0, clock=clock)


def test_a_look_is_due_when_a_transcript_grows_or_rotates_and_once_a_second(
    tmp_path: Path,
) -> None:
    clock = Clock()
    gate = gate_for(tmp_path, clock)
    log = tmp_path / "a1.log"
    log.write_text("hello\n")
    assert gate(["a1", "a2"])  # the first look
    clock.now += 0.2
    assert not gate(["a1", "a2"])  # nothing moved
    with log.open("a") as f:
        f.write("more\n")
    assert gate(["a1", "a2"])  # output: look now, not at the next second
    clock.now += 0.2
    assert not gate(["a1", "a2"])
    os.replace(log, tmp_path / "a1.log.1")  # rotated: the path names another file
    log.write_text("more\n")
    assert gate(["a1", "a2"])
    (tmp_path / "a2.log").write_text("")  # a transcript appears (an agent started)
    assert gate(["a1", "a2"])
    clock.now += 0.5
    assert not gate(["a1", "a2"])
    clock.now += 0.5
    assert gate(["a1", "a2"])  # a second without output: look anyway (deaths, resizes)
    assert gate(["a1", "a2", "a3"])  # another set of agents is a change too


class Source:
    def __init__(self) -> None:
        self.asked = 0
        self.captured: list[list[str]] = []
        self.screen = "idle"

    def marks(self) -> dict[str, PaneMark]:
        self.asked += 1
        pane = Pane("a1", "%1", 42, "demo", False, width=80)
        return {"a1": PaneMark(pane, 0, 0)}

    def capture(self, pane_ids: list[str]) -> dict[str, str]:
        self.captured.append(pane_ids)
        return {p: self.screen for p in pane_ids}


def test_a_look_the_gate_declines_asks_tmux_nothing_and_reports_no_change(
    tmp_path: Path,
) -> None:
    clock = Clock()
    source = Source()
    detector = ChangeDetector(source, clock=clock, gate=gate_for(tmp_path, clock))
    first = detector.look(["a1"])
    assert source.asked == 1 and first.changed == {"a1"} and first.server_up
    clock.now += 0.2
    quiet = detector.look(["a1"])
    assert source.asked == 1  # not asked
    assert quiet.changed == frozenset() and quiet.screens == {}
    assert quiet.panes == first.panes and quiet.server_up  # the last panes stand
    source.screen = "busy"
    detector.seen.pop("a1")  # as the dashboard does for a page that wants the screen now
    forced = detector.look(["a1"], force=True)
    assert source.asked == 2 and forced.changed == {"a1"}
