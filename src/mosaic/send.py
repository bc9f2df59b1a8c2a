"""Type a message into agents and prove each one took it (SPEC §8).

Why it is built this way (facts measured on the real TUIs, issue 4):

* The text travels as ONE bracketed paste (`load-buffer` from stdin, then
  `paste-buffer -p -r -d`), never as `send-keys`: send-keys is capped by tmux's command size,
  and readline turns a typed tab into completion. `-r` keeps line feeds, so a multi-line
  message is one message; `-d` deletes the uniquely named buffer, so nothing lingers.
* The submit key waits out the runtime's paste window (a TUI folds an Enter that follows a
  paste too quickly into the paste), and then only *screen evidence* counts: the message
  left the input, the runtime went busy or asked for approval, or it shows its own queued
  sign. "The screen changed" is not evidence (spinners repaint around a stuck input).
* A message still in the input after a grace period gets the submit key again — the text
  is never typed twice — with at most `MAX_RETRY_GAP_S` between presses.
* Nothing is typed into a screen that waits for the operator (an approval dialog would take
  the pasted characters as answers), and nothing is typed anywhere when any target is not
  running.
* Sends to one agent are serialized across processes by a per-agent flock, so two senders
  never interleave keystrokes.

The decisions are pure functions (`judge`, `retry_gap`, `exit_code`) so they can be tested
without tmux; `deliver` and `send` do the I/O, all of it through `Tmux`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from mosaic.errors import EXIT_FAILED, EXIT_NOT_ACCEPTED, EXIT_OK, MosaicError
from mosaic.lock import exclusive
from mosaic.paths import Paths
from mosaic.runtimes import Runtime
from mosaic.screen import (
    Activity,
    Classification,
    InputCheck,
    Screen,
    classify,
    input_text,
    message_in_input,
    queued,
)
from mosaic.session import Pane, int_or_zero, list_panes
from mosaic.tmux import SEP, Tmux

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
"""SPEC §8: a retry comes at most one second after the previous one."""
POLL_FIRST_S = 0.01
POLL_MAX_S = 0.1


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    NOT_ACCEPTED = "not_accepted"
    NOT_RUNNING = "not_running"
    # Not in SPEC §8's list, which describes verified sends: with --no-verify there is no
    # evidence either way, and claiming "accepted" without evidence is what SPEC forbids.
    UNVERIFIED = "unverified"
    # Another target was not running, so (SPEC §8) nothing was typed into this one.
    SKIPPED = "skipped"


EXIT_OF: dict[Outcome, int] = {
    Outcome.ACCEPTED: EXIT_OK,
    Outcome.QUEUED: EXIT_OK,
    Outcome.UNVERIFIED: EXIT_OK,
    Outcome.NOT_ACCEPTED: EXIT_NOT_ACCEPTED,
    Outcome.NOT_RUNNING: EXIT_FAILED,
    Outcome.SKIPPED: EXIT_FAILED,
}
SEVERITY = (EXIT_OK, EXIT_NOT_ACCEPTED, EXIT_FAILED)
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
    """The worst exit code of the results (SPEC §8), ranked by `SEVERITY`."""
    codes = [EXIT_OF[r.outcome] for r in results] or [EXIT_OK]
    return max(codes, key=SEVERITY.index)


# --- pure decisions ----------------------------------------------------------------------


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    IN_INPUT = "in_input"  # still sitting in the input: the submit key may be retried
    NO_EVIDENCE = "no_evidence"  # neither in the input nor proven taken: keep looking


@dataclass(frozen=True)
class Decision:
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
) -> Decision:
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
        return Decision(Verdict.ACCEPTED, _unique((*check.evidence, *now.evidence)))
    if check.present:
        return Decision(Verdict.IN_INPUT, check.evidence)
    if queued_lines and (seen or check.region_found):
        return Decision(Verdict.QUEUED, queued_lines)
    went = now.activity in (Activity.BUSY, Activity.AWAITING_APPROVAL)
    if not check.region_found:
        if seen and went:
            return Decision(Verdict.ACCEPTED, now.evidence)
        return Decision(Verdict.NO_EVIDENCE, now.evidence)
    if seen or emptied:
        extra = now.evidence if went or emptied else ()
        return Decision(Verdict.ACCEPTED, _unique((*check.evidence, *extra)))
    if now.activity is Activity.BUSY:
        return Decision(Verdict.QUEUED if busy_before else Verdict.ACCEPTED, now.evidence)
    if now.activity is Activity.AWAITING_APPROVAL:
        return Decision(Verdict.ACCEPTED, now.evidence)
    return Decision(Verdict.NO_EVIDENCE, check.evidence)


def retry_gap(attempts: int) -> float:
    """Grace after the `attempts`-th submit press before pressing again."""
    gap = RETRY_GAPS_S[min(max(attempts, 1), len(RETRY_GAPS_S)) - 1]
    return min(gap, MAX_RETRY_GAP_S - POLL_MAX_S)


def foreground(pane: Pane, runtime: Runtime) -> bool:
    """The runtime itself owns the terminal, so typed text goes to it (issue 4 §4)."""
    return not pane.dead and pane.command in runtime.processes


def _unique(lines: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(line for line in lines if line.strip()))


def parse_observation(raw: str) -> tuple[list[str], str] | None:
    """Split the output of `_observe`'s chained call into the fields line and the screen."""
    head, _, body = raw.partition("\n")
    if not head.startswith(_MARK):
        return None
    fields = head[len(_MARK) :].split(SEP)
    if len(fields) != len(_FIELDS):
        return None
    return fields, body


# --- I/O ---------------------------------------------------------------------------------

_MARK = "\x1e"
_FIELDS = (
    "pane_dead",
    "pane_current_command",
    "pane_in_mode",
    "cursor_x",
    "cursor_y",
    "pane_width",
    "pane_pid",
)
_FORMAT = _MARK + SEP.join("#{" + f + "}" for f in _FIELDS)


@dataclass(frozen=True)
class View:
    """One look at a pane: its liveness and its visible screen, from one tmux call."""

    pane: Pane
    screen: Screen


def observe(tmux: Tmux, pane: Pane) -> View | None:
    """The pane's state and visible screen in ONE tmux invocation; None when it is gone.

    display-message and capture-pane run in the same command list, so the cursor position
    and the screen belong together.
    """
    proc = tmux.run(
        "display-message", "-p", "-t", pane.id, _FORMAT, ";",
        "capture-pane", "-p", "-t", pane.id,
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return None
    parsed = parse_observation(proc.stdout.decode("utf-8", errors="replace"))
    if parsed is None:
        return None
    f, body = parsed
    fresh = Pane(
        session=pane.session,
        id=pane.id,
        pid=int_or_zero(f[6]),
        command=f[1],
        dead=f[0] == "1",
        dead_status=pane.dead_status,
        dead_signal=pane.dead_signal,
        in_mode=f[2] == "1",
        cursor_x=int_or_zero(f[3]),
        cursor_y=int_or_zero(f[4]),
        width=int_or_zero(f[5]),
    )
    screen = Screen.from_capture(body, fresh.cursor_x, fresh.cursor_y, fresh.width)
    return View(fresh, screen)



def paste(tmux: Tmux, pane_id: str, data: bytes) -> None:
    """Load `data` into a fresh named buffer and paste it bracketed, LF kept, buffer deleted."""
    name = f"mosaic-send-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    proc = tmux.run(
        "load-buffer", "-b", name, "-", ";",
        "paste-buffer", "-p", "-r", "-d", "-b", name, "-t", pane_id,
        input=data, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        tmux.run("delete-buffer", "-b", name, check=False)
        err = proc.stderr.decode("utf-8", errors="replace").strip()
        raise MosaicError(f"tmux paste-buffer: {err or f'exit {proc.returncode}'}")


def send_lock_path(paths: Paths, agent: str) -> Path:
    return paths.run / "send" / f"{agent}.lock"


@dataclass(frozen=True)
class Target:
    agent: str
    runtime: Runtime
    pane: Pane


class _Delivery:
    """One agent's delivery: a small state machine run under the agent's send lock."""

    def __init__(
        self,
        tmux: Tmux,
        target: Target,
        message: str,
        timeout: float,
        verify: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tmux = tmux
        self.t = target
        self.message = message
        self.data = message.encode("utf-8", errors="surrogateescape")
        self.timeout = timeout
        self.verify = verify
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + timeout
        self.attempts = 0
        self.typed = False

    def result(self, outcome: Outcome, evidence: Sequence[str] = ()) -> Result:
        return Result(
            self.t.agent, outcome, self.attempts, self.clock() - self.started, tuple(evidence)
        )

    def run(self, lock_path: Path) -> Result:
        try:
            with exclusive(lock_path):
                # The timeout covers delivery, not the wait for another sender to finish.
                self.deadline = self.clock() + self.timeout
                return self._deliver()
        except MosaicError as exc:
            outcome = Outcome.NOT_ACCEPTED if self.typed else Outcome.NOT_RUNNING
            return self.result(outcome, [f"(error: {exc.message})"])

    def _remaining(self) -> float:
        return self.deadline - self.clock()

    def _submit(self) -> None:
        self.tmux.run("send-keys", "-t", self.t.pane.id, self.t.runtime.submit_key)
        self.attempts += 1

    def _deliver(self) -> Result:
        rt = self.t.runtime
        view = self._ready_view()
        if isinstance(view, Result):
            return view
        before = classify(rt, view.screen)
        self.typed = True
        paste(self.tmux, self.t.pane.id, self.data)
        pasted_at = self.clock()
        window = max(rt.paste_window_ms / 1000, MIN_PASTE_WINDOW_S)
        time.sleep(max(0.0, min(window, self._remaining())))
        if not self.verify:
            self._submit()
            return self.result(Outcome.UNVERIFIED)
        seen, occupied = self._wait_seen(pasted_at + window + SEEN_WAIT_S)
        self._submit()
        return self._verify(seen, occupied, before.activity is Activity.BUSY)

    def _ready_view(self) -> View | Result:
        """Re-read the pane under the lock: alive, runtime in front, no copy mode, no dialog."""
        rt = self.t.runtime
        wait_until = self.clock() + min(FOREGROUND_WAIT_S, self.timeout)
        while True:
            view = observe(self.tmux, self.t.pane)
            if view is None:
                return self.result(Outcome.NOT_RUNNING, ["(the agent's session is gone)"])
            if view.pane.dead:
                return self.result(Outcome.NOT_RUNNING, ["(the agent's process has exited)"])
            if foreground(view.pane, rt) and any(line.strip() for line in view.screen.lines):
                break
            if self.clock() >= wait_until:
                return self.result(
                    Outcome.NOT_RUNNING,
                    [f"(the foreground command is {view.pane.command!r}, not {rt.name})"],
                )
            time.sleep(0.05)
        if view.pane.in_mode:
            self.tmux.run("send-keys", "-X", "-t", self.t.pane.id, "cancel")
            again = observe(self.tmux, self.t.pane)
            if again is None:
                return self.result(Outcome.NOT_RUNNING, ["(the agent's session is gone)"])
            view = again
        while True:
            state = classify(rt, view.screen)
            if state.activity is not Activity.AWAITING_APPROVAL:
                return view
            # Pasted characters would answer the dialog: wait for the operator instead.
            if self._remaining() <= 0:
                return self.result(
                    Outcome.NOT_ACCEPTED,
                    ["(waiting for the operator; nothing was typed)", *state.evidence],
                )
            time.sleep(min(0.1, max(self._remaining(), 0.0)))
            again = observe(self.tmux, self.t.pane)
            if again is None or again.pane.dead:
                return self.result(Outcome.NOT_RUNNING, ["(the agent exited)"])
            view = again

    def _wait_seen(self, until: float) -> tuple[bool, bool]:
        """Whether the pasted text shows in the input before the submit key is pressed, and
        whether the input holds anything at all then (it may be unreadable: readline draws
        a buffer taller than the screen as garbage)."""
        until = min(until, self.deadline)
        while True:
            view = observe(self.tmux, self.t.pane)
            if view is not None and message_in_input(self.t.runtime, view.screen, self.message):
                return True, True
            if view is None or view.pane.dead or self.clock() >= until:
                occupied = view is not None and bool(input_text(self.t.runtime, view.screen))
                return False, occupied
            time.sleep(0.02)

    def _verify(self, seen: bool, occupied: bool, busy_before: bool) -> Result:
        rt = self.t.runtime
        last_press = self.clock()
        interval = POLL_FIRST_S
        decision = Decision(Verdict.NO_EVIDENCE, ())
        while True:
            time.sleep(max(0.0, min(interval, self._remaining())))
            interval = min(interval * 2, POLL_MAX_S)
            view = observe(self.tmux, self.t.pane)
            if view is None:
                return self.result(
                    Outcome.NOT_ACCEPTED, [*decision.evidence, "(the agent's session is gone)"]
                )
            check = message_in_input(rt, view.screen, self.message)
            now_state = classify(rt, view.screen)
            emptied = (
                occupied
                and now_state.activity is Activity.IDLE
                and input_text(rt, view.screen) == ""
            )
            decision = judge(
                check,
                now_state,
                queued(rt, view.screen),
                seen=seen,
                busy_before=busy_before,
                handed_off=not view.pane.dead and not foreground(view.pane, rt),
                emptied=emptied,
            )
            if not decision.evidence:
                decision = Decision(decision.verdict, _around_cursor(view.screen))
            if decision.verdict is Verdict.ACCEPTED:
                return self.result(Outcome.ACCEPTED, decision.evidence)
            if decision.verdict is Verdict.QUEUED:
                return self.result(Outcome.QUEUED, decision.evidence)
            if view.pane.dead:
                return self.result(
                    Outcome.NOT_ACCEPTED, [*decision.evidence, "(the agent's process exited)"]
                )
            now = self.clock()
            if now >= self.deadline:
                return self.result(Outcome.NOT_ACCEPTED, decision.evidence)
            if decision.verdict is Verdict.IN_INPUT:
                seen = True
                if now - last_press >= retry_gap(self.attempts):
                    self._submit()
                    last_press = self.clock()
                    interval = POLL_FIRST_S


def _around_cursor(screen: Screen) -> tuple[str, ...]:
    """The cursor row and the row above it: what the generic rule looked at."""
    rows = (screen.cursor_y - 1, screen.cursor_y)
    return _unique([screen.row(i).rstrip() for i in rows])


# --- the whole send ----------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """Where each target stands before anything is typed."""

    ready: tuple[Target, ...]
    refused: tuple[Result, ...]


def plan(
    tmux: Tmux,
    targets: Sequence[tuple[str, Runtime]],
    wait: float,
    clock: Callable[[], float] = time.monotonic,
) -> Planned:
    """Resolve every target's pane once (one `list-panes` per look) and refuse the dead.

    A pane whose own process is the runtime but with something else in the foreground (a
    shell running a short command) gets up to `wait` seconds to come back to its prompt.
    """
    from mosaic.status import runtime_alive

    start = clock()
    while True:
        panes = list_panes(tmux)
        ready: list[Target] = []
        refused: list[Result] = []
        pending = False
        for name, runtime in targets:
            pane = (panes or {}).get(name)
            if pane is None:
                why = "no tmux server" if panes is None else "no session"
                refused.append(Result(name, Outcome.NOT_RUNNING, 0, 0.0, (f"({why})",)))
            elif pane.dead:
                refused.append(
                    Result(name, Outcome.NOT_RUNNING, 0, 0.0, ("(the agent's process exited)",))
                )
            elif foreground(pane, runtime):
                ready.append(Target(name, runtime, pane))
            else:
                pending = pending or runtime_alive(pane, runtime)
                why = f"(the foreground command is {pane.command!r}, not {runtime.name})"
                refused.append(Result(name, Outcome.NOT_RUNNING, 0, 0.0, (why,)))
        if not refused or not pending or clock() - start >= wait:
            elapsed = clock() - start
            return Planned(
                tuple(ready),
                tuple(Result(r.agent, r.outcome, 0, elapsed, r.evidence) for r in refused),
            )
        time.sleep(0.05)


def send(
    tmux: Tmux,
    paths: Paths,
    targets: Sequence[tuple[str, Runtime]],
    message: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    verify: bool = True,
) -> list[Result]:
    """Deliver `message` to every target in parallel; results in the targets' order.

    Nothing is typed anywhere when any target is not running (SPEC §8): the others are
    reported `skipped`.
    """
    planned = plan(tmux, targets, min(timeout, FOREGROUND_WAIT_S))
    order = {name: i for i, (name, _) in enumerate(targets)}
    if planned.refused:
        names = ", ".join(r.agent for r in planned.refused)
        skipped = [
            Result(t.agent, Outcome.SKIPPED, 0, 0.0, (f"(not sent: {names} not running)",))
            for t in planned.ready
        ]
        return sorted([*planned.refused, *skipped], key=lambda r: order[r.agent])

    results: dict[str, Result] = {}
    crashes: list[BaseException] = []

    def one(target: Target) -> None:
        delivery = _Delivery(tmux, target, message, timeout, verify)
        try:
            results[target.agent] = delivery.run(send_lock_path(paths, target.agent))
        except BaseException as exc:  # a bug: re-raised in the caller's thread below
            crashes.append(exc)

    if len(planned.ready) == 1:
        one(planned.ready[0])
    else:
        threads = [threading.Thread(target=one, args=(t,), daemon=True) for t in planned.ready]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    if crashes:
        raise crashes[0]
    return [results[name] for name, _ in targets]
