"""What a send (or an approval) came to, per agent, and the exit code of the whole."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mosaic.errors import ExitCode


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    NOT_ACCEPTED = "not_accepted"
    NOT_RUNNING = "not_running"
    # With --no-verify there is no evidence either way, and claiming "accepted" without
    # evidence is what a send must never do.
    UNVERIFIED = "unverified"
    # Another target was not running, so nothing was typed into this one.
    SKIPPED = "skipped"
    # The screen waits for the operator (an approval or trust dialog): nothing was typed,
    # since a keystroke there could approve a command nobody saw.
    AWAITING_APPROVAL = "awaiting_approval"


EXIT_OF: dict[Outcome, int] = {
    Outcome.ACCEPTED: ExitCode.OK,
    Outcome.QUEUED: ExitCode.OK,
    Outcome.UNVERIFIED: ExitCode.OK,
    Outcome.NOT_ACCEPTED: ExitCode.NOT_ACCEPTED,
    Outcome.AWAITING_APPROVAL: ExitCode.NOT_ACCEPTED,
    Outcome.NOT_RUNNING: ExitCode.FAILED,
    Outcome.SKIPPED: ExitCode.FAILED,
}
SEVERITY = (ExitCode.OK, ExitCode.NOT_ACCEPTED, ExitCode.FAILED)
"""Worst last. Usage errors (2) never reach delivery. A failure (1: not running, nothing
typed) outranks "typed but unconfirmed" (3) because it means the operation did not happen."""


@dataclass(frozen=True)
class Result:
    agent: str
    outcome: Outcome
    attempts: int
    seconds: float
    evidence: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool | None:
        """True only on screen evidence; None when verification was skipped."""
        if self.outcome is Outcome.UNVERIFIED:
            return None
        return self.outcome in (Outcome.ACCEPTED, Outcome.QUEUED)

    def as_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "outcome": str(self.outcome),
            "accepted": self.accepted,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "evidence": list(self.evidence),
        }


def exit_code(results: Sequence[Result]) -> int:
    """The worst exit code of the results, ranked by `SEVERITY`."""
    codes = [EXIT_OF[r.outcome] for r in results] or [ExitCode.OK]
    return max(codes, key=SEVERITY.index)

