"""Type a message into agents and prove each one took it (docs/reference.md, "send").

Why it is built this way (facts measured on the real TUIs, docs/runtimes.md):

* The text travels as ONE bracketed paste (`load-buffer` from stdin, then
  `paste-buffer -p -r -d`), never as `send-keys`: send-keys is capped by tmux's command size,
  and readline turns a typed tab into completion. `-r` keeps line feeds, so a multi-line
  message is one message; `-d` deletes the uniquely named buffer, so nothing lingers.
* The submit key waits out the runtime's paste window (a TUI folds an Enter that follows a
  paste too quickly into the paste), and at least half of it after the paste shows in the
  input; then only *screen evidence* counts: the message left the input, the runtime went
  busy or asked for approval, or it shows its own queued sign. "The screen changed" is not
  evidence (spinners repaint around a stuck input).
* A message still in the input after a grace period gets the submit key again — the text
  is never typed twice — with at most `MAX_RETRY_GAP_S` between presses.
* Nothing is typed into a screen that waits for the operator (an approval dialog would take
  the pasted characters as answers): such a send answers `awaiting_approval` at once, with
  the dialog's lines. Nothing is typed anywhere when any target is not running.
* Every send that finishes leaves one `sent` event per agent in the fleet's event log.
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
from pathlib import Path

from mosaic.agents.liveness import runtime_alive
from mosaic.base.flock import exclusive
from mosaic.config.paths import Paths
from mosaic.config.runtimes import Runtime
from mosaic.errors import MosaicError, UsageError
from mosaic.screen.classify import Activity, Screen, classify, input_text, message_in_input, queued
from mosaic.send.judge import (
    DEFAULT_TIMEOUT_S,
    FOREGROUND_WAIT_S,
    MIN_PASTE_WINDOW_S,
    POLL_FIRST_S,
    POLL_MAX_S,
    SEEN_WAIT_S,
    Judgement,
    Verdict,
    foreground,
    judge,
    retry_gap,
    unique,
)
from mosaic.send.outcome import Outcome, Result
from mosaic.send.text import problem
from mosaic.tmux.client import Tmux
from mosaic.tmux.panes import Pane, View, list_panes, observe


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


def check_message(text: str) -> str:
    """A message of nothing but whitespace is a usage error (every front end says so alike)."""
    why = problem(text)
    if why is not None:
        raise UsageError(why)
    return text


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
        before_type: Callable[[View], bool] | None = None,
        only_submit: bool = False,
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
        self.before_type = before_type
        self.only_submit = only_submit

    def result(self, outcome: Outcome, evidence: Sequence[str] = ()) -> Result:
        return Result(
            self.t.agent, outcome, self.attempts, self.clock() - self.started, tuple(evidence)
        )

    def run(self, lock_path: Path) -> Result:
        try:
            with exclusive(lock_path):
                return self.run_locked()
        except MosaicError as exc:
            return self._error(exc)

    def run_locked(self) -> Result:
        """The delivery, while the caller holds the agent's send lock."""
        try:
            # The timeout covers delivery, not the wait for another sender to finish.
            self.deadline = self.clock() + self.timeout
            return self._deliver()
        except MosaicError as exc:
            return self._error(exc)

    def _error(self, exc: MosaicError) -> Result:
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
        if self.before_type is not None and not self.before_type(view):
            return self.result(Outcome.SKIPPED, ["(not typed: the caller withdrew it)"])
        self.typed = True
        if self.only_submit:
            # The text sits in the input since an earlier paste (the outbox decided so from
            # the screen): only the submit key is pressed, the text never again.
            self._submit()
            return self._verify(True, True, before.activity is Activity.BUSY)
        paste(self.tmux, self.t.pane.id, self.data)
        pasted_at = self.clock()
        window = max(rt.paste_window_ms / 1000, MIN_PASTE_WINDOW_S)
        if not self.verify:
            time.sleep(max(0.0, min(window, self._remaining())))
            self._submit()
            return self.result(Outcome.UNVERIFIED)
        seen, occupied, shown_at = self._wait_seen(pasted_at + window + SEEN_WAIT_S)
        # A TUI folds an Enter into a paste for a while after it has *handled* the paste,
        # which on a loaded machine is well after we sent it; the paste showing in the input
        # proves it was handled, so half the window must also have passed since then
        # (docs/runtimes.md, "The paste window").
        self._sleep_until(max(pasted_at + window, shown_at + window / 2))
        self._submit()
        return self._verify(seen, occupied, before.activity is Activity.BUSY)

    def _sleep_until(self, when: float) -> None:
        time.sleep(max(0.0, min(when - self.clock(), self._remaining())))

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
        state = classify(rt, view.screen)
        if state.activity is Activity.AWAITING_APPROVAL:
            # Pasted characters would answer the dialog: answer at once, type nothing.
            return self.result(
                Outcome.AWAITING_APPROVAL,
                ["(waiting for the operator; nothing was typed)", *state.evidence],
            )
        return view

    def _wait_seen(self, until: float) -> tuple[bool, bool, float]:
        """Whether the pasted text shows in the input before the submit key is pressed,
        whether the input holds anything at all then (it may be unreadable: readline draws
        a buffer taller than the screen as garbage), and when it was seen (0.0: never)."""
        until = min(until, self.deadline)
        while True:
            view = observe(self.tmux, self.t.pane)
            if view is not None and message_in_input(self.t.runtime, view.screen, self.message):
                return True, True, self.clock()
            if view is None or view.pane.dead or self.clock() >= until:
                occupied = view is not None and bool(input_text(self.t.runtime, view.screen))
                return False, occupied, 0.0
            time.sleep(0.02)

    def _verify(self, seen: bool, occupied: bool, busy_before: bool) -> Result:
        rt = self.t.runtime
        last_press = self.clock()
        interval = POLL_FIRST_S
        decision = Judgement(Verdict.NO_EVIDENCE, ())
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
            # A dead pane's screen ends in tmux's own `Pane is dead` line, which moves the
            # cursor off the input: "the text left the input" means nothing there, only the
            # runtime's own signs (busy, a dialog, queued) drawn before it died still count.
            alive = not view.pane.dead
            decision = judge(
                check,
                now_state,
                queued(rt, view.screen),
                seen=seen and alive,
                busy_before=busy_before,
                handed_off=alive and not foreground(view.pane, rt),
                emptied=emptied and alive,
            )
            if not decision.evidence:
                decision = Judgement(decision.verdict, _around_cursor(view.screen))
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


def deliver_locked(
    tmux: Tmux,
    target: Target,
    message: str,
    timeout: float,
    *,
    before_type: Callable[[View], bool] | None = None,
    only_submit: bool = False,
) -> Result:
    """One agent's verified delivery, for a caller that holds the agent's send lock and
    decides under it whether to type at all (the outbox, docs/outbox.md).

    `before_type` runs once the screen is found ready (runtime in front, no dialog) and
    before the first keystroke; when it returns False nothing is typed (`skipped`).
    `only_submit`: the text already sits in the input, so only the submit key is pressed.
    """
    delivery = _Delivery(tmux, target, message, timeout, True,
                         before_type=before_type, only_submit=only_submit)  # fmt: skip
    return delivery.run_locked()


def _around_cursor(screen: Screen) -> tuple[str, ...]:
    """The cursor row and the row above it: what the generic rule looked at."""
    rows = (screen.cursor_y - 1, screen.cursor_y)
    return unique([screen.row(i).rstrip() for i in rows])


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

    Nothing is typed anywhere when any target is not running: the others are
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
        refused = sorted([*planned.refused, *skipped], key=lambda r: order[r.agent])
        _record_sent(paths, refused, message)
        return refused

    results: dict[str, Result] = {}
    crashes: list[BaseException] = []

    def one(target: Target) -> None:
        delivery = _Delivery(tmux, target, message, timeout, verify)
        try:
            results[target.agent] = delivery.run(paths.send_lock(target.agent))
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
    done = [results[name] for name, _ in targets]
    _record_sent(paths, done, message)
    return done


def _record_sent(paths: Paths, results: Sequence[Result], message: str) -> None:
    from mosaic.config.eventtypes import EventType
    from mosaic.store import events

    events.record(paths.db, [
        events.draft(r.agent, EventType.SENT, outcome=str(r.outcome), chars=len(message))
        for r in results
    ])  # fmt: skip

