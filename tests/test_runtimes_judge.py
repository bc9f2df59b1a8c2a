"""`send`'s judgement on the recorded screens of every built-in runtime: a message that still
sits in the input is never `accepted`, whatever else the send believed (that the text was
seen, that the agent was busy before, that the input just emptied).

The screens are tests/fixtures/screens/<runtime>/ (b_typed: typed, not submitted;
b2_pasted_multiline: pasted, not submitted; c_busy: right after the submit;
f_same_command_enter: text and Enter in one tmux call, which Codex and Gemini CLI did not
submit). Gemini's fold (an Enter within ~120 ms of a paste becomes a new line) is the b2
screen with the empty input line the fold adds, since it was described but not recorded.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mosaic.config.runtimes import builtin_runtimes
from mosaic.screen.classify import Screen, classify, message_in_input, queued
from mosaic.send.judge import Judgement, Verdict, judge

SCREENS = Path(__file__).resolve().parent / "fixtures" / "screens"
RT = builtin_runtimes()

HELLO = "Hello agent, this message is typed but not submitted"
PASTED = "pasted line one\npasted line two\npasted line three"
SAME = "Enter in same command as the text"
RUNTIMES = ("codex", "claude", "gemini", "opencode", "aider")


def recorded(runtime: str, name: str) -> Screen:
    return Screen.from_capture((SCREENS / runtime / name).read_text(encoding="utf-8"))


def gemini_folded() -> Screen:
    """b2_pasted_multiline after an Enter folded into the paste: one more (empty) input line,
    so two blank rows above the footer instead of one."""
    lines = list(recorded("gemini", "b2_pasted_multiline.txt").lines)
    footer = next(i for i, line in enumerate(lines) if line.startswith(" workspace ("))
    lines.insert(footer, "")
    lines.pop()
    return Screen.from_capture("\n".join(lines) + "\n")


def verdict(
    runtime: str,
    screen: Screen,
    message: str,
    *,
    seen: bool,
    busy_before: bool,
    emptied: bool = False,
) -> Judgement:
    rt = RT[runtime]
    return judge(
        message_in_input(rt, screen, message),
        classify(rt, screen),
        queued(rt, screen),
        seen=seen,
        busy_before=busy_before,
        emptied=emptied,
    )


# (runtime, screen after the submit key, message): the message is still in the input.
UNSENT = [
    *((rt, "b_typed.txt", HELLO) for rt in RUNTIMES),
    *((rt, "b2_pasted_multiline.txt", PASTED) for rt in RUNTIMES),
    ("codex", "f_same_command_enter.txt", SAME),
    ("gemini", "f_same_command_enter.txt", SAME),
    ("gemini", "folded", PASTED),
]


def screen_of(runtime: str, name: str) -> Screen:
    return gemini_folded() if name == "folded" else recorded(runtime, name)


@pytest.mark.parametrize(("runtime", "name", "message"), UNSENT)
def test_a_message_in_the_input_is_never_accepted(runtime: str, name: str, message: str) -> None:
    screen = screen_of(runtime, name)
    for seen, busy_before, emptied in itertools.product((False, True), repeat=3):
        decision = verdict(
            runtime, screen, message, seen=seen, busy_before=busy_before, emptied=emptied
        )
        assert decision.verdict is Verdict.IN_INPUT, (seen, busy_before, emptied, decision)
        assert decision.evidence, "the retry is explained by the input lines"
        assert all(line in screen.lines for line in decision.evidence)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_went_busy_is_accepted_and_busy_before_is_queued(runtime: str) -> None:
    busy = recorded(runtime, "c_busy.txt")
    seen = verdict(runtime, busy, HELLO, seen=True, busy_before=False)
    assert seen.verdict is Verdict.ACCEPTED
    unseen = verdict(runtime, busy, HELLO, seen=False, busy_before=False)
    assert unseen.verdict is Verdict.ACCEPTED
    assert any(line in unseen.evidence for line in classify(RT[runtime], busy).evidence)
    # Busy before the paste and never seen in the input: the runtime holds it for later.
    held = verdict(runtime, busy, HELLO, seen=False, busy_before=True)
    assert held.verdict is Verdict.QUEUED


@pytest.mark.parametrize(
    ("runtime", "taken"),
    [("codex", False), ("claude", True), ("gemini", False), ("opencode", True), ("aider", True)],
)
def test_text_and_enter_in_one_tmux_call(runtime: str, taken: bool) -> None:
    """Claude Code, opencode and aider submitted it; Codex and Gemini CLI kept it."""
    screen = recorded(runtime, "f_same_command_enter.txt")
    decision = verdict(runtime, screen, SAME, seen=True, busy_before=False)
    assert decision.verdict is (Verdict.ACCEPTED if taken else Verdict.IN_INPUT)
    if taken:
        # Back to idle with an empty input: only a message seen there before has left it.
        unseen = verdict(runtime, screen, SAME, seen=False, busy_before=False)
        assert unseen.verdict is Verdict.NO_EVIDENCE
