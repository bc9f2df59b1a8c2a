"""Pure: what to do with a message whose text may already have reached the agent — a
delivery interrupted by a crash (found `delivering`), or an attempt that was not accepted
(queued again, the text perhaps still in the input). Decided from evidence, before
anything is typed again; the table and the reasons for its ambiguous rows are in
docs/outbox.md, "Deciding an interrupted delivery".

Tested without tmux (tests/test_outbox_recover.py); `deliver` gathers the evidence: the
agent's screen now (`message_in_input`), its transcript since the position recorded when
the delivery began (`read_echo`), and whether the runtime is still the process that was
typed into.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mosaic.config.runtimes import Runtime
from mosaic.screen.classify import FRAGMENT_CHARS, PASTE_PLACEHOLDER, compile_signature
from mosaic.screen.model import squash, squash_map

SHORT_CHARS = 8
"""A message tail shorter than this counts as echoed only at the end of a line (where an
input line ends, the cursor after it): a few characters anywhere could be anything."""

# Box edges some TUIs draw after the input, and the demo's long-input marker before it.
_EDGES = "│┃|╯╰╮╭─"


class Action(StrEnum):
    SUBMIT = "submit"  # the text sits in the input: press the submit key only
    DELIVERED = "delivered"  # it arrived: record it, type nothing
    PASTE = "paste"  # it never reached a live input: type it (again)
    FAIL = "fail"  # cannot be decided: give it up with the reason, type nothing


@dataclass(frozen=True)
class Evidence:
    in_input: bool  # the agent's input shows the message now
    echoed: bool | None  # the transcript since the position shows it; None: unreadable
    submitted: bool  # after that echo, the runtime showed busy, a dialog or its queued sign
    same_process: bool  # the runtime is the process the text was typed into


@dataclass(frozen=True)
class Decision:
    action: Action
    row: int  # the row of the table in docs/outbox.md
    reason: str


def decide(e: Evidence) -> Decision:
    if e.in_input:
        return Decision(
            Action.SUBMIT, 1, "the text sat in the agent's input: only the submit key was pressed"
        )
    if e.echoed is None:
        return Decision(
            Action.FAIL, 6,
            "the delivery was interrupted and the agent's transcript since it began cannot "
            "be read; it may have arrived (check the agent, then `outbox retry`)",
        )  # fmt: skip
    if e.echoed and e.submitted:
        return Decision(Action.DELIVERED, 2, "the transcript shows it submitted")
    if e.echoed and e.same_process:
        return Decision(Action.DELIVERED, 3, "it reached the input and left it")
    if e.echoed:
        return Decision(
            Action.PASTE, 4, "it reached the input of a process that has since ended: typed again"
        )
    return Decision(Action.PASTE, 5, "it never reached the agent: typed again")


def read_echo(runtime: Runtime, message: str, after: str) -> tuple[bool, bool]:
    """(echoed, submitted): whether the transcript since the position (`after`, as
    `transcript.printed` gives it: every piece printed, on its own line) shows the message
    in the agent's input, and after that the runtime's own sign of a turn (busy, a dialog,
    its queued sign)."""
    end = _echo_end(message, after)
    if end is None:
        return False, False
    rest = after[end:]
    for pattern in (runtime.busy, runtime.approval, runtime.queued):
        if pattern and compile_signature(pattern).search(rest):
            return True, True
    return True, False


def _echo_end(message: str, text: str) -> int | None:
    """Where in `text` the first echo of `message` ends, or None when there is none."""
    ends = []
    placeholder = PASTE_PLACEHOLDER.search(text)
    if placeholder:
        ends.append(placeholder.end())
    flat, where = squash_map(text)
    lines = [line for line in message.splitlines() if line.strip()] or [message]
    tails = {squash(message)[-FRAGMENT_CHARS:], squash(lines[-1])[-FRAGMENT_CHARS:]}
    for tail in sorted(t for t in tails if t):
        if len(tail) >= SHORT_CHARS:
            at = flat.find(tail)
            if at >= 0:
                ends.append(where[at + len(tail) - 1] + 1)
            continue
        offset = 0
        for line in text.split("\n"):
            edged = line.rstrip().rstrip(_EDGES)
            if squash(line).endswith(tail) or squash(edged).endswith(tail):
                ends.append(offset + len(line))
                break
            offset += len(line) + 1
    return min(ends) if ends else None
