"""The decision about an interrupted delivery (outbox/recover.py), without tmux: each row of
the table in docs/outbox.md, and reading the echo of a message (and the sign that it was
submitted) from a real demo agent transcript and from the recorded screens of real TUIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mosaic.config.runtimes import builtin_runtimes
from mosaic.outbox.recover import Action, Evidence, decide, read_echo
from mosaic.tmux.transcript import printed

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# A real transcript of the demo agent (pipe-pane's raw bytes): a 3-line message, a 320-char
# one, a paste that was cleared without submitting (Ctrl-U), then "ok" — each submitted
# one followed by the busy line.
DEMO_LOG = (FIXTURES / "transcripts" / "demo.log").read_bytes()
THREE = "first line of three\nsecond line\nthe third, last line"
LONG = "long " * 60 + "END-OF-LONG-MESSAGE"
CLEARED = "pasted but never submitted"
RUNTIMES = builtin_runtimes()
DEMO = RUNTIMES["demo"]


@pytest.mark.parametrize(
    ("evidence", "row", "action"),
    [
        (Evidence(True, True, False, True), 1, Action.SUBMIT),
        (Evidence(True, None, False, False), 1, Action.SUBMIT),
        (Evidence(False, True, True, False), 2, Action.DELIVERED),
        (Evidence(False, True, True, True), 2, Action.DELIVERED),
        (Evidence(False, True, False, True), 3, Action.DELIVERED),
        (Evidence(False, True, False, False), 4, Action.PASTE),
        (Evidence(False, False, False, True), 5, Action.PASTE),
        (Evidence(False, False, False, False), 5, Action.PASTE),
        (Evidence(False, None, False, True), 6, Action.FAIL),
        (Evidence(False, None, False, False), 6, Action.FAIL),
    ],
)
def test_each_row_of_the_table(evidence: Evidence, row: int, action: Action) -> None:
    decision = decide(evidence)
    assert (decision.row, decision.action) == (row, action)
    assert decision.reason


def _after(marker: bytes) -> str:
    """The transcript from just before the redraw that first shows `marker`, as the
    position recorded before a paste would cut it."""
    at = DEMO_LOG.index(marker)
    return printed(DEMO_LOG[DEMO_LOG.rindex(b"\r", 0, at) :])


def test_a_submitted_message_shows_its_echo_and_the_busy_line() -> None:
    assert read_echo(DEMO, THREE, _after(b"first line of three")) == (True, True)
    assert read_echo(DEMO, LONG, _after(b"long long")) == (True, True)
    assert read_echo(DEMO, "ok", _after(b"demo> ok")) == (True, True)


def test_a_paste_never_submitted_is_echoed_without_a_sign() -> None:
    """The cleared paste is overwritten on the same line by the next redraw: the evidence
    keeps every piece printed, not what the line ended up showing."""
    start = DEMO_LOG.index(CLEARED.encode()) - len(b"\r\x1b[Jdemo> ")
    end = DEMO_LOG.index(b"demo> ok")
    assert read_echo(DEMO, CLEARED, printed(DEMO_LOG[start:end])) == (True, False)


def test_what_came_before_the_position_does_not_count() -> None:
    assert read_echo(DEMO, THREE, _after(b"demo> long")) == (False, False)
    assert read_echo(DEMO, "never typed at all", printed(DEMO_LOG)) == (False, False)


def test_a_short_message_counts_only_where_an_input_line_ends() -> None:
    """"ok" is inside plenty of words; only a line that ends with it is its echo."""
    assert read_echo(DEMO, "ok", "the joke was broken\n") == (False, False)
    assert read_echo(DEMO, "ok", "demo> ok\n") == (True, False)
    before_ok = DEMO_LOG.index(b"demo> ok")
    assert read_echo(DEMO, "ok", printed(DEMO_LOG[:before_ok])) == (False, False)


def test_a_restart_right_after_the_paste() -> None:
    """The old process drew the text, died, and the new one printed its banner on the same
    line: the echo is there, no sign of a turn after it."""
    data = b"\r\x1b[Jdemo> some queued work\x1b[?2004hmosaic demo agent \xc2\xb7 Enter sends\r\n"
    data += b"\r\x1b[Jdemo> "
    assert read_echo(DEMO, "some queued work", printed(data)) == (True, False)


def _screens(runtime: str, *names: str) -> str:
    """Screens of a real TUI one after the other, as a transcript would hold them."""
    folder = FIXTURES / "screens" / runtime
    return "\n".join((folder / f"{name}.txt").read_text() for name in names)


@pytest.mark.parametrize("runtime", ["codex", "claude", "gemini"])
def test_real_tuis_typed_then_busy(runtime: str) -> None:
    rt = RUNTIMES[runtime]
    message = "Hello agent, this message is typed but not submitted"
    assert read_echo(rt, message, _screens(runtime, "a_idle")) == (False, False)
    assert read_echo(rt, message, _screens(runtime, "b_typed")) == (True, False)
    assert read_echo(rt, message, _screens(runtime, "b_typed", "c_busy")) == (True, True)


def test_a_paste_placeholder_is_an_echo() -> None:
    """opencode (like Claude Code for long pastes) shows a placeholder, not the text."""
    rt = RUNTIMES["opencode"]
    shown = _screens("opencode", "b2_pasted_multiline")
    assert "[Pasted ~3 lines]" in shown
    assert read_echo(rt, "a\nb\nc-text-that-is-never-drawn", shown)[0] is True
