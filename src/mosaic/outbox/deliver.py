"""The outbox's deliverer: the watcher's participant that types queued messages into idle
agents — per agent one at a time, in queue order, each exactly once (docs/outbox.md).

Each tick (`Outbox.step`, quick: a few indexed reads) fails the messages of agents that
left the roster, expires those past their ttl, and hands each agent that has a message
waiting and is idle to a worker thread. A worker (`serve`) takes the agent's send lock —
the one `send` and `approve` take — without waiting (a busy lock means someone is typing
into it: try later), and under it:

1. reads the agent's oldest unsettled message (`store.outbox.head`): later ones wait;
2. looks at the screen: the runtime in front and idle, or it tries later;
3. a message whose text may already have reached the agent (found `delivering` after a
   crash, or queued again after an attempt that was not accepted) is decided from
   evidence first (`recover.decide`): delivered, failed, submit key only, or paste again;
4. commits `delivering` (fenced by the watcher's lease epoch, with the transcript position
   and the runtime process) BEFORE the first keystroke, then delivers through
   `send.delivery.deliver_locked`, the same verified delivery as `send`;
5. commits the outcome: `delivered`; `queued` again with backoff; `failed` after the
   message's `max_attempts`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mosaic.base import procs
from mosaic.base.flock import attempt
from mosaic.config.paths import Paths
from mosaic.config.runtimes import Runtime
from mosaic.outbox.recover import Action, Evidence, decide, read_echo
from mosaic.screen import profiles
from mosaic.screen.classify import Activity, Screen, classify, message_in_input
from mosaic.send.delivery import Target, deliver_locked
from mosaic.send.judge import foreground
from mosaic.send.outcome import Outcome, Result
from mosaic.store import db
from mosaic.store import outbox as store
from mosaic.store.outbox import LEFT_ROSTER, Message, State
from mosaic.tmux import transcript
from mosaic.tmux.client import Tmux
from mosaic.tmux.panes import Pane, View, observe

if TYPE_CHECKING:
    import sqlite3

    from mosaic.watch.loop import Tick, Watcher

ATTEMPT_TIMEOUT_S = 10.0
"""How long one attempt waits for proof that the agent took the message."""
SETTLE_S = 1.0
"""A message that may have been typed is judged only this long after its attempt began, so
a paste still on its way to the screen and the transcript is not taken for absent."""
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
EXPIRE_EVERY_S = 1.0
WORKERS = 8
"""Agents served at once (each worker talks to tmux; the machine's cores are few)."""
LOST_LEASE = "another watcher holds the outbox lease; this one types nothing more"

Log = Callable[[str], None]


def backoff(attempts: int) -> float:
    """Seconds before the next attempt, after `attempts` attempts not accepted."""
    return float(min(BACKOFF_FIRST_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def process_identity(pid: int) -> str | None:
    """The process as a value that a reused pid cannot fake: pid and start time."""
    info = procs.info(pid)
    return None if info is None else f"{pid}:{info.start_ticks}"


@dataclass(frozen=True)
class Job:
    agent: str
    runtime: Runtime
    pane: Pane
    debounce_s: float


class Outbox:
    """The watcher's participant (docs/architecture.md, "watcher"): see the module doc."""

    def __init__(self, paths: Paths, tmux: Tmux, conn: sqlite3.Connection, epoch: int,
                 log: Log) -> None:  # fmt: skip
        self.paths = paths
        self.tmux = tmux
        self.conn = conn
        self.epoch = epoch
        self.log = log
        self.lock = threading.Lock()
        self.inflight: dict[str, threading.Thread] = {}
        self.not_before: dict[str, float] = {}
        self.roster_seen: object = None
        self.next_expire = 0.0
        self.stale = False

    def step(self, tick: Tick) -> None:
        now = tick.now
        if tick.roster is not self.roster_seen:
            self.roster_seen = tick.roster
            for m in store.fail_absent(self.conn, tick.roster.names, LEFT_ROSTER, now):
                self.log(f"outbox: #{m.id} for {m.agent} failed: {LEFT_ROSTER}")
        if now >= self.next_expire:
            self.next_expire = now + EXPIRE_EVERY_S
            for m in store.expire_due(self.conn, now):
                self.log(f"outbox: #{m.id} for {m.agent} expired")
        if self.stale:
            return
        pending = store.pending_agents(self.conn)
        if not pending:
            return
        # Roster agents only: one that only a newer roster names waits for the reload.
        idle = set(tick.idle_agents())
        with self.lock:
            for agent in pending:
                if len(self.inflight) >= WORKERS:
                    break
                if agent not in idle or agent in self.inflight:
                    continue
                if now < self.not_before.get(agent, 0.0):
                    continue
                mark = tick.look.marks.get(agent)
                if mark is None:
                    continue
                runtime = tick.roster.runtime_for(tick.roster.agent(agent))
                job = Job(agent, runtime, mark.pane, runtime.debounce_ms / 1000)
                worker = threading.Thread(target=self._work, args=(job,), daemon=True,
                                          name=f"outbox-{agent}")  # fmt: skip
                self.inflight[agent] = worker
                worker.start()

    def _work(self, job: Job) -> None:
        again = time.time() + 1.0
        try:
            again = serve(self.paths, self.tmux, self.epoch, job, self.log)
        except LostLease:
            self.stale = True
            self.log(f"outbox: {LOST_LEASE}")
        except Exception as exc:  # a worker must never take the watcher down
            self.log(f"outbox: {job.agent}: {type(exc).__name__}: {exc}")
        finally:
            with self.lock:
                self.inflight.pop(job.agent, None)
                self.not_before[job.agent] = again

    def close(self, wait: float) -> None:
        """Give deliveries under way up to `wait` seconds; one cut short is decided from
        evidence by the next watcher."""
        end = time.monotonic() + wait
        with self.lock:
            workers = list(self.inflight.values())
        for worker in workers:
            worker.join(max(0.0, end - time.monotonic()))


class LostLease(Exception):
    """The database refused a transition: another watcher holds the current epoch."""


def attach(watcher: Watcher, log: Log) -> Outbox:
    """Take the outbox lease for this watcher and join its tick."""
    epoch = store.acquire(watcher.conn, os.getpid(), time.time())
    box = Outbox(watcher.paths, watcher.tmux, watcher.conn, epoch, log)
    watcher.add_step("outbox", box.step, close=box.close)
    log(f"outbox: lease epoch {epoch}")
    return box


# --- one round for one agent ---------------------------------------------------------------


def serve(paths: Paths, tmux: Tmux, epoch: int, job: Job, log: Log,
          clock: Callable[[], float] = time.time) -> float:  # fmt: skip
    """Recover or deliver the agent's oldest message; returns the time before which the
    agent needs no new round (0: whenever it is idle next)."""
    with attempt(paths.send_lock(job.agent)) as locked:
        if not locked:
            return clock() + 0.5  # someone types into it now: `send`, `approve`
        with db.opened(paths.db) as conn:
            return _serve(conn, paths, tmux, epoch, job, log, clock)


def _serve(conn: sqlite3.Connection, paths: Paths, tmux: Tmux, epoch: int, job: Job,
           log: Log, clock: Callable[[], float]) -> float:  # fmt: skip
    now = clock()
    message = store.head(conn, job.agent)
    if message is None:
        return 0.0
    if message.state is State.QUEUED:
        if message.expired(now):
            return 0.0  # the tick expires it
        if message.next_at > now:
            return message.next_at
    if message.typed and message.began_at is not None and now - message.began_at < SETTLE_S:
        return message.began_at + SETTLE_S
    view = observe(tmux, job.pane)
    if view is None or view.pane.dead or not foreground(view.pane, job.runtime):
        return now + 0.5
    if classify(job.runtime, view.screen).activity is not Activity.IDLE:
        return 0.0
    only_submit = False
    note = None  # how an interrupted delivery was decided, kept with the delivered message
    if message.typed:
        evidence = gather(paths, job.runtime, view, message)
        decision = decide(evidence)
        note = f"recovered (row {decision.row}): {decision.reason}"
        log(f"outbox: #{message.id} for {job.agent}: {decision.action}, {note}")
        if decision.action is Action.DELIVERED:
            _settle(conn, message, epoch, clock(), State.DELIVERED, note)
            log(f"outbox: #{message.id} delivered to {job.agent}")
            return clock() + job.debounce_s
        if decision.action is Action.FAIL:
            _settle(conn, message, epoch, clock(), State.FAILED, decision.reason)
            return 0.0
        only_submit = decision.action is Action.SUBMIT
    elif _foreign_input(job.runtime, view.screen):
        return now + 1.0  # never mix a message into what someone is typing

    began: list[Message] = []

    def before_type(ready: View) -> bool:
        position = None if only_submit else transcript.position(paths.agent_log(job.agent))
        process = process_identity(ready.pane.pid)
        if not store.begin(conn, message, epoch, clock(), position=position, process=process):
            if store.current_epoch(conn) != epoch:
                raise LostLease
            return False
        began.append(replace(message, state=State.DELIVERING, attempts=message.attempts + 1))
        return True

    target = Target(job.agent, job.runtime, view.pane)
    result = deliver_locked(tmux, target, message.text, ATTEMPT_TIMEOUT_S,
                            before_type=before_type, only_submit=only_submit)  # fmt: skip
    if not began:
        return now + 0.5  # nothing typed: not ready after all, or the message moved on
    return _outcome(conn, began[0], epoch, job, result, note, log, clock)


def _outcome(conn: sqlite3.Connection, message: Message, epoch: int, job: Job,
             result: Result, note: str | None, log: Log,
             clock: Callable[[], float]) -> float:  # fmt: skip
    now = clock()
    if result.outcome in (Outcome.ACCEPTED, Outcome.QUEUED):
        _settle(conn, message, epoch, now, State.DELIVERED, note)
        log(f"outbox: #{message.id} delivered to {job.agent} "
            f"(attempt {message.attempts}, {result.seconds:.2f}s)")  # fmt: skip
        return now + job.debounce_s
    why = next((line for line in reversed(result.evidence) if line.strip()), str(result.outcome))
    if message.attempts >= message.max_attempts:
        reason = f"not accepted after {message.attempts} attempts ({why})"
        _settle(conn, message, epoch, now, State.FAILED, reason)
        log(f"outbox: #{message.id} for {job.agent} failed: {reason}")
        return 0.0
    delay = backoff(message.attempts)
    reason = (f"attempt {message.attempts} of {message.max_attempts} not accepted ({why}); "
              f"next in {delay:g}s")  # fmt: skip
    _settle(conn, message, epoch, now, State.QUEUED, reason, now + delay)
    log(f"outbox: #{message.id} for {job.agent}: {reason}")
    return now + delay


def _settle(conn: sqlite3.Connection, message: Message, epoch: int, now: float, to: State,
            reason: str | None, next_at: float | None = None) -> None:  # fmt: skip
    settled = store.settle(conn, message, epoch, now, to, reason, next_at)
    if not settled and store.current_epoch(conn) != epoch:
        raise LostLease
    # Otherwise moved meanwhile by the operator (cancel) or `apply` (left the roster): theirs
    # wins.


def gather(paths: Paths, runtime: Runtime, view: View, message: Message) -> Evidence:
    """The evidence `recover.decide` weighs: the screen now, the transcript since the
    delivery began, and whether the runtime is still the process that was typed into."""
    in_input = message_in_input(runtime, view.screen, message.text).present
    raw = transcript.after(paths.agent_log(message.agent), message.log_inode,
                           message.log_offset or 0)  # fmt: skip
    if raw is None:
        echoed: bool | None = None
        submitted = False
    else:
        echoed, submitted = read_echo(runtime, message.text, transcript.printed(raw))
    same = message.process is not None and process_identity(view.pane.pid) == message.process
    return Evidence(in_input, echoed, submitted, same)


def _foreign_input(runtime: Runtime, screen: Screen) -> bool:
    """The input holds text (someone typing in an attached session), where the input can be
    read at all (a profiled runtime, or a generic one with a ready signature)."""
    layout = profiles.layout(runtime, screen)
    if not layout.profiled and not runtime.ready:
        return False
    return bool(layout.input_text and layout.input_text.strip())
