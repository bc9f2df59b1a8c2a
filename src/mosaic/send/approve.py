"""Answer the dialog an agent waits on (docs/reference.md, "approve"): approve once, or deny.

Typing into an agent is dangerous when nobody looks, so:

* Keys are typed only into a screen that the one classifier (`screen.classify`, the same
  `status`, `send` and the watcher use) reads as `awaiting_approval`, looked at under the
  agent's send lock (the lock `send` and the outbox take), so no send can interleave.
  Anything else is `not_awaiting` and nothing is typed.
* The keys are the runtime profile's `approve_keys` / `deny_keys`: the allow-ONCE choice,
  never "always" / "don't ask again".
* `ok` only on evidence: the dialog left the screen (the screen no longer waits, or it now
  shows a different question). Otherwise `not_confirmed` (exit 3), with the screen lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mosaic.base.flock import exclusive
from mosaic.config.paths import Paths
from mosaic.config.runtimes import Runtime
from mosaic.errors import ConfigError, ExitCode
from mosaic.screen.classify import Activity, classify
from mosaic.send.judge import foreground
from mosaic.tmux.client import Tmux
from mosaic.tmux.panes import View, list_panes, observe

DEFAULT_TIMEOUT_S = 10.0
POLL_S = 0.05


class Answer(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    NOT_AWAITING = "not_awaiting"  # no dialog on the screen: nothing typed
    NOT_RUNNING = "not_running"  # nothing typed
    NOT_CONFIRMED = "not_confirmed"  # keys typed, the dialog did not leave the screen


EXIT_OF = {
    Answer.APPROVED: ExitCode.OK,
    Answer.DENIED: ExitCode.OK,
    Answer.NOT_AWAITING: ExitCode.FAILED,
    Answer.NOT_RUNNING: ExitCode.FAILED,
    Answer.NOT_CONFIRMED: ExitCode.NOT_ACCEPTED,
}


@dataclass(frozen=True)
class ApproveResult:
    agent: str
    answer: Answer
    keys: tuple[str, ...]  # what was typed (empty when nothing was)
    seconds: float
    evidence: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.answer in (Answer.APPROVED, Answer.DENIED)

    @property
    def exit_code(self) -> int:
        return int(EXIT_OF[self.answer])

    def as_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "outcome": str(self.answer),
            "ok": self.ok,
            "keys": list(self.keys),
            "seconds": round(self.seconds, 3),
            "evidence": list(self.evidence),
        }


def keys_for(runtime: Runtime, deny: bool) -> tuple[str, ...]:
    keys = runtime.deny_keys if deny else runtime.approve_keys
    if not keys:
        which = "deny_keys" if deny else "approve_keys"
        raise ConfigError(
            f"runtime {runtime.name!r} has no {which}: mosaic does not know which keys "
            f"answer its dialogs (a custom runtime sets `{which}` in the roster)"
        )
    return keys


def left(before: tuple[str, ...], view: View, runtime: Runtime) -> bool:
    """The dialog that was answered is gone: the screen no longer waits for the operator,
    or it asks something else now (a runtime may ask a second question)."""
    now = classify(runtime, view.screen)
    return now.activity is not Activity.AWAITING_APPROVAL or now.evidence != before


def approve(
    tmux: Tmux,
    paths: Paths,
    agent: str,
    runtime: Runtime,
    deny: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> ApproveResult:
    keys = keys_for(runtime, deny)  # before anything: a profile without keys types nothing
    started = clock()

    def result(answer: Answer, typed: tuple[str, ...], evidence: tuple[str, ...]) -> ApproveResult:
        return ApproveResult(agent, answer, typed, clock() - started, evidence)

    with exclusive(paths.send_lock(agent)):
        pane = (list_panes(tmux) or {}).get(agent)
        view = observe(tmux, pane) if pane is not None else None
        if view is None or view.pane.dead:
            return result(Answer.NOT_RUNNING, (), ("(the agent is not running)",))
        if not foreground(view.pane, runtime):
            why = f"(the foreground command is {view.pane.command!r}, not {runtime.name})"
            return result(Answer.NOT_RUNNING, (), (why,))
        asked = classify(runtime, view.screen)
        if asked.activity is not Activity.AWAITING_APPROVAL:
            bottom = tuple(line for line in view.screen.lines if line.strip())[-3:]
            return result(Answer.NOT_AWAITING, (), (f"(activity: {asked.activity})", *bottom))
        # `--` ends tmux's options: a key can never be read as one.
        tmux.run("send-keys", "-t", view.pane.id, "--", *keys)
        deadline = clock() + timeout
        while True:
            time.sleep(POLL_S)
            again = observe(tmux, view.pane)
            if again is None or again.pane.dead:
                return result(Answer.NOT_CONFIRMED, keys, ("(the agent exited)",))
            if left(asked.evidence, again, runtime):
                now = classify(runtime, again.screen)
                shown = now.evidence or tuple(ln for ln in again.screen.lines if ln.strip())[-3:]
                return result(Answer.DENIED if deny else Answer.APPROVED, keys, shown)
            if clock() >= deadline:
                return result(Answer.NOT_CONFIRMED, keys, asked.evidence)
