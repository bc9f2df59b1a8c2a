"""The pure decisions of `send` (judge, retry gaps, exit codes) and the pane observation
parser, without tmux."""

from __future__ import annotations

import pytest

from mosaic.screen.classify import Activity, Classification, InputCheck
from mosaic.send import judge as judge_mod
from mosaic.send import outcome as outcome_mod
from mosaic.tmux import panes

IDLE = Classification(Activity.IDLE, ("demo>",))
BUSY = Classification(Activity.BUSY, ("| thinking (1s)",))
ASK = Classification(Activity.AWAITING_APPROVAL, ("Allow? (y/n)",))
UNKNOWN = Classification(Activity.UNKNOWN, ())
PRESENT = InputCheck(True, ("demo> hello",))
GONE = InputCheck(False, ("demo>",))
NO_REGION = InputCheck(False, (), region_found=False)
V = judge_mod.Verdict


@pytest.mark.parametrize(
    ("check", "now", "queued", "seen", "busy_before", "verdict"),
    [
        (PRESENT, IDLE, (), True, False, V.IN_INPUT),
        (PRESENT, BUSY, (), True, False, V.IN_INPUT),
        (GONE, IDLE, (), True, False, V.ACCEPTED),  # left the input
        (GONE, BUSY, (), False, False, V.ACCEPTED),  # went busy
        (GONE, BUSY, (), False, True, V.QUEUED),  # held by an agent busy before
        (GONE, ASK, (), False, False, V.ACCEPTED),  # asked for approval
        (GONE, IDLE, ("⎿  Queued",), True, True, V.QUEUED),  # runtime's own queued sign
        (GONE, IDLE, (), False, False, V.NO_EVIDENCE),  # never seen, nothing changed
        (GONE, UNKNOWN, (), False, False, V.NO_EVIDENCE),
        (NO_REGION, UNKNOWN, (), True, False, V.NO_EVIDENCE),  # a dialog hides the input
        (NO_REGION, IDLE, ("⎿  Queued",), False, False, V.NO_EVIDENCE),
        (NO_REGION, ASK, (), True, False, V.ACCEPTED),
        (NO_REGION, BUSY, (), False, False, V.NO_EVIDENCE),
    ],
)
def test_judge(
    check: InputCheck,
    now: Classification,
    queued: tuple[str, ...],
    seen: bool,
    busy_before: bool,
    verdict: judge_mod.Verdict,
) -> None:
    decision = judge_mod.judge(check, now, queued, seen=seen, busy_before=busy_before)
    assert decision.verdict is verdict
    if verdict is not V.NO_EVIDENCE:
        assert decision.evidence


def test_judge_a_shell_running_the_command_took_it() -> None:
    """`sleep 9` + line feed looks the same before and after Enter; the foreground tells."""
    decision = judge_mod.judge(PRESENT, UNKNOWN, (), seen=True, busy_before=False, handed_off=True)
    assert decision.verdict is V.ACCEPTED


def test_judge_an_input_that_held_the_paste_and_is_empty_now() -> None:
    """Readline draws a buffer taller than the screen as garbage: the text is never seen,
    but an occupied input that became an empty prompt after the submit took it."""
    empty = InputCheck(False, ("$",))
    idle = Classification(Activity.IDLE, ("$",))
    decision = judge_mod.judge(empty, idle, (), seen=False, busy_before=False, emptied=True)
    assert decision.verdict is V.ACCEPTED
    decision = judge_mod.judge(empty, idle, (), seen=False, busy_before=False)
    assert decision.verdict is V.NO_EVIDENCE


def test_retry_gaps_grow_but_stay_under_a_second() -> None:
    gaps = [judge_mod.retry_gap(n) for n in range(1, 20)]
    assert gaps == sorted(gaps)
    assert gaps[0] >= 0.3
    assert all(g + judge_mod.POLL_MAX_S <= judge_mod.MAX_RETRY_GAP_S for g in gaps)


def _r(result: outcome_mod.Outcome) -> outcome_mod.Result:
    return outcome_mod.Result("a", result, 1, 0.1)


def test_exit_code_is_the_worst() -> None:
    out = outcome_mod.Outcome
    assert outcome_mod.exit_code([]) == 0
    assert outcome_mod.exit_code([_r(out.ACCEPTED), _r(out.QUEUED), _r(out.UNVERIFIED)]) == 0
    assert outcome_mod.exit_code([_r(out.ACCEPTED), _r(out.NOT_ACCEPTED)]) == 3
    assert outcome_mod.exit_code([_r(out.NOT_ACCEPTED), _r(out.NOT_RUNNING)]) == 1
    assert outcome_mod.exit_code([_r(out.SKIPPED), _r(out.ACCEPTED)]) == 1
    assert _r(out.QUEUED).accepted is True and _r(out.UNVERIFIED).accepted is None
    assert _r(out.NOT_RUNNING).as_json()["accepted"] is False



def test_parse_observation() -> None:
    row = ["b1", "%3", "42", "bash", "0", "", "", "0", "7", "1", "80"]
    view = panes.parse_observation("\x1e" + "\x1f".join(row) + "\n$ ls\nfile\n")
    assert view is not None
    assert (view.pane.session, view.pane.id, view.pane.pid, view.pane.command) == (
        "b1", "%3", 42, "bash",
    )
    assert (view.pane.cursor_x, view.pane.cursor_y, view.pane.width) == (7, 1, 80)
    assert view.screen.lines == ("$ ls", "file")
    assert panes.parse_observation("garbage\n") is None
    assert panes.parse_observation("\x1e" + "\x1f".join(row[:5]) + "\n$") is None
