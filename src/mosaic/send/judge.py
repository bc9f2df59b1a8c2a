"""Pure decisions of a send: did the agent take the message, and when to press again.

Tested without tmux (tests/test_send_judge.py); `delivery` feeds them what it sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from mosaic.agents.liveness import runtime_in_front
from mosaic.config.runtimes import Runtime
from mosaic.screen.classify import Activity, Classification, InputCheck
from mosaic.tmux.panes import Pane

DEFAULT_TIMEOUT_S = 30.0
MIN_PASTE_WINDOW_S = 0.15
"""Codex folds an Enter into a paste for ~120 ms, Claude Code ~100 ms: 150 ms is safe."""
FOREGROUND_WAIT_S = 2.0
"""How long a shell that is running a short command gets to return to its prompt."""
SEEN_WAIT_S = 1.0
"""How long to wait, after the paste window, for the pasted text to show in the input."""
RETRY_GAPS_S = (0.4, 0.6, 0.8, 0.9)
"""Grace after each submit press before the next one; the last value repeats."""
MAX_RETRY_GAP_S = 1.0
"""The contract: a retry comes at most one second after the previous one."""
POLL_FIRST_S = 0.01
POLL_MAX_S = 0.1


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    IN_INPUT = "in_input"  # still sitting in the input: the submit key may be retried
    NO_EVIDENCE = "no_evidence"  # neither in the input nor proven taken: keep looking


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    evidence: tuple[str, ...]


def judge(
    check: InputCheck,
    now: Classification,
    queued_lines: tuple[str, ...],
    *,
    seen: bool,
    busy_before: bool,
    handed_off: bool = False,
    emptied: bool = False,
) -> Judgement:
    """Decide from one screen, after a submit, whether the agent took the message.

    `seen`: the message was once observed in the input, so its absence now means it left.
    Without that, absence alone proves nothing (the TUI may not have drawn it, or may hold
    typed-ahead input invisibly while busy): only the runtime's own signs count then, and a
    busy screen that was already busy before the paste means the message waits in a queue.
    A missing input region (a dialog covers it) is never read as "the message left".
    `handed_off`: the runtime gave the terminal to a child since the submit (a shell running
    the command), which proves it took the message even when the screen looks the same
    (`sleep 9` plus a line feed shows identically before and after the submit).
    `emptied`: the input held something just before the submit (the paste, even where it
    could not be read back) and is an empty ready prompt now.
    """
    if handed_off:
        return Judgement(Verdict.ACCEPTED, unique((*check.evidence, *now.evidence)))
    if check.present:
        return Judgement(Verdict.IN_INPUT, check.evidence)
    if queued_lines and (seen or check.region_found):
        return Judgement(Verdict.QUEUED, queued_lines)
    went = now.activity in (Activity.BUSY, Activity.AWAITING_APPROVAL)
    if not check.region_found:
        if seen and went:
            return Judgement(Verdict.ACCEPTED, now.evidence)
        return Judgement(Verdict.NO_EVIDENCE, now.evidence)
    if seen or emptied:
        extra = now.evidence if went or emptied else ()
        return Judgement(Verdict.ACCEPTED, unique((*check.evidence, *extra)))
    if now.activity is Activity.BUSY:
        return Judgement(Verdict.QUEUED if busy_before else Verdict.ACCEPTED, now.evidence)
    if now.activity is Activity.AWAITING_APPROVAL:
        return Judgement(Verdict.ACCEPTED, now.evidence)
    return Judgement(Verdict.NO_EVIDENCE, check.evidence)


def retry_gap(attempts: int) -> float:
    """Grace after the `attempts`-th submit press before pressing again."""
    gap = RETRY_GAPS_S[min(max(attempts, 1), len(RETRY_GAPS_S)) - 1]
    return min(gap, MAX_RETRY_GAP_S - POLL_MAX_S)


def foreground(pane: Pane, runtime: Runtime) -> bool:
    """The runtime itself owns the terminal, so typed text goes to it (not to a child a
    shell runs in the foreground); see `liveness.runtime_in_front`."""
    return runtime_in_front(pane, runtime)


def unique(lines: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(line for line in lines if line.strip()))

