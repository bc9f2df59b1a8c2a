"""Exactly once across crashes: real tmux, real demo agents (their `--record` file is the
ground truth of what each received), the real watcher.

Each row of the decision table (docs/outbox.md, "Deciding an interrupted delivery") is set
up deliberately: with the watcher stopped, a message is put in `delivering` by a watcher
epoch that is gone (as a watcher killed mid-delivery leaves it), the agent is brought into
the row's situation with real keystrokes, and a fresh watcher is started to decide. Then
the lease: a stale watcher types nothing. Then faults at random moments: the watcher
SIGKILLed several times during delivery and one `tmux kill-server`, with 40 messages."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetkit import agent, mosaic, ok, tmux
from helpers import pid_alive, wait_until
from mosaic.config.load import load
from mosaic.config.paths import Paths, resolve
from mosaic.config.runtimes import builtin_runtimes
from mosaic.outbox.deliver import Job, LostLease, process_identity, serve
from mosaic.send.delivery import paste
from mosaic.store import db
from mosaic.store import outbox as store
from mosaic.tmux import transcript
from mosaic.tmux.client import Tmux
from mosaic.tmux.panes import Pane, list_panes
from outboxkit import demo_roster, idle, message, queue, recorded, stop_watcher, up, wait_state
from watchkit import wait_event, watcher_running


@dataclass
class Rig:
    """The fleet seen from inside: its database and its tmux server."""

    env: dict[str, str]
    paths: Paths
    tmux: Tmux
    conn: sqlite3.Connection

    def pane(self, name: str) -> Pane:
        pane = (list_panes(self.tmux) or {}).get(name)
        assert pane is not None and not pane.dead, f"{name} has no live pane"
        return pane

    def interrupted(self, name: str, text: str, *, position: tuple[int | None, int] | None = None
                    ) -> store.Message:  # fmt: skip
        """A message left `delivering` by a watcher that died: begun (position and process
        recorded) under an epoch that a newer watcher has since replaced."""
        [ident] = store.enqueue(self.conn, [name], text, time.time())
        epoch = store.acquire(self.conn, pid=1, now=time.time())
        pane = self.pane(name)
        where = transcript.position(self.paths.agent_log(name)) if position is None else position
        m = store.get(self.conn, [ident])[0]
        assert store.begin(self.conn, m, epoch, time.time() - 5, position=where,
                           process=process_identity(pane.pid))  # fmt: skip
        return store.get(self.conn, [ident])[0]

    def paste(self, name: str, text: str) -> None:
        paste(self.tmux, self.pane(name).id, text.encode())
        wait_until(lambda: text in tmux(self.env, "capture-pane", "-p", "-t", name),
                   what="the text in the input")  # fmt: skip

    def screen(self, name: str) -> str:
        return tmux(self.env, "capture-pane", "-p", "-t", name)


@pytest.fixture
def rig(fleet_env: dict[str, str]) -> Iterator[Rig]:
    paths = resolve(env=fleet_env)
    conn = db.connect(paths.db)
    yield Rig(fleet_env, paths, Tmux(fleet_env["MOSAIC_TMUX_SOCKET"], env=fleet_env), conn)
    conn.close()


def _fleet(rig: Rig, tmp: Path, agents: dict[str, list[str]], extra: str = "") -> None:
    up(rig.env, demo_roster(tmp, agents, extra), list(agents))
    stop_watcher(rig.env)


def _recover(rig: Rig, ident: int, state: str = "delivered") -> dict[str, object]:
    """Start a watcher (a new epoch) and wait until it has decided the message."""
    ok(rig.env, "start")
    return wait_state(rig.env, ident, state)


def test_row_1_text_in_the_input_gets_only_the_submit_key(rig: Rig, tmp_path: Path) -> None:
    _fleet(rig, tmp_path, {"d1": []})
    text = "row one: pasted, the Enter never came"
    m = rig.interrupted("d1", text)
    rig.paste("d1", text)
    assert str(_recover(rig, m.id)["reason"]).startswith("recovered (row 1): ")
    # Pasted again, the agent would have received the text twice in one message.
    assert recorded(tmp_path, "d1") == [text]


def test_row_2_submitted_is_delivered_without_typing(rig: Rig, tmp_path: Path) -> None:
    _fleet(rig, tmp_path, {"d1": []})
    text = "row two: pasted and submitted, then the watcher died"
    m = rig.interrupted("d1", text)
    rig.paste("d1", text)
    time.sleep(0.3)  # the demo agent's paste window is over: this Enter submits
    tmux(rig.env, "send-keys", "-t", rig.pane("d1").id, "Enter")
    wait_until(lambda: recorded(tmp_path, "d1") == [text], what="the agent took it")
    done = _recover(rig, m.id)
    assert done["reason"] == "recovered (row 2): the transcript shows it submitted"
    ok(rig.env, "send", "d1", "marker")
    assert recorded(tmp_path, "d1") == [text, "marker"]


def test_row_3_left_the_input_of_the_same_process(rig: Rig, tmp_path: Path) -> None:
    """A custom runtime with no busy signature: the transcript cannot show the turn, but
    the text reached the input of this very process and is no longer there."""
    rec = str(tmp_path / "q1.rec")
    up(rig.env, f"""\
version: 1
agents:
  - name: q1
    runtime: quiet
    args: ["--think", "0", "--record", {json.dumps(rec)}]
runtimes:
  quiet:
    command: [{json.dumps(sys.executable)}, "-m", "mosaic.demo_agent"]
    processes: {json.dumps(list(builtin_runtimes()["demo"].processes))}
    ready: '^(?:demo|\\.\\.\\.\\.)>(?: |$)'
""", ["q1"])  # fmt: skip
    stop_watcher(rig.env)
    text = "row three: taken by a runtime that shows no busy sign"
    m = rig.interrupted("q1", text)
    rig.paste("q1", text)
    time.sleep(0.3)
    tmux(rig.env, "send-keys", "-t", rig.pane("q1").id, "Enter")
    wait_until(lambda: recorded(tmp_path, "q1") == [text], what="the agent took it")
    done = _recover(rig, m.id)
    assert done["reason"] == "recovered (row 3): it reached the input and left it"
    ok(rig.env, "send", "q1", "marker")
    assert recorded(tmp_path, "q1") == [text, "marker"]


def test_row_4_the_process_died_with_the_text_in_its_input(rig: Rig, tmp_path: Path) -> None:
    _fleet(rig, tmp_path, {"d1": []})
    text = "row four: pasted, then the agent was killed"
    m = rig.interrupted("d1", text)
    rig.paste("d1", text)
    old = rig.pane("d1").pid
    os.kill(old, signal.SIGKILL)
    wait_until(
        lambda: (r := agent(rig.env, "d1"))["pid"] not in (None, old) and r["activity"] == "idle",
        timeout=20, what="d1 back as a new process",
    )  # fmt: skip
    assert text not in rig.screen("d1")
    assert str(_recover(rig, m.id)["reason"]).startswith("recovered (row 4): ")
    assert recorded(tmp_path, "d1") == [text]


def test_row_5_never_pasted_is_pasted(rig: Rig, tmp_path: Path) -> None:
    _fleet(rig, tmp_path, {"d1": []})
    text = "row five: committed, the watcher died before the paste"
    m = rig.interrupted("d1", text)
    assert str(_recover(rig, m.id)["reason"]).startswith("recovered (row 5): ")
    assert recorded(tmp_path, "d1") == [text]


def test_row_6_unreadable_transcript_fails_it_with_the_reason(
    rig: Rig, tmp_path: Path
) -> None:
    _fleet(rig, tmp_path, {"d1": []})
    text = "row six: the transcript since then is gone"
    # The recorded file was rotated away twice since (no file has that inode any more).
    m = rig.interrupted("d1", text, position=(2**40, 0))
    failed = _recover(rig, m.id, "failed")
    assert "cannot be read; it may have arrived" in str(failed["reason"])
    assert wait_event(rig.env, "delivery_failed", "d1")["id"] == m.id
    ok(rig.env, "send", "d1", "marker")
    assert recorded(tmp_path, "d1") == ["marker"]


def test_an_agent_killed_with_the_text_in_its_input(rig: Rig, tmp_path: Path) -> None:
    """The marathon's find: a dead pane's screen ends in tmux's `Pane is dead` line, which
    `send` once read as "the text left the input" (accepted, and the outbox's message
    lost). Now it is not accepted, and the outbox delivers it to the respawned process."""
    env = rig.env
    up(env, demo_roster(tmp_path, {"d1": ["--swallow-enter-ms", "1500"]}), ["d1"])
    text = "killed while it sat in the input"

    def kill_when_typed() -> None:
        pid = rig.pane("d1").pid
        wait_until(lambda: text in rig.screen("d1"), what="the text in the input")
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_typed)
    killer.start()
    res = mosaic(env, "send", "--json", "d1", text)
    killer.join()
    [result] = json.loads(res.out)["results"]
    assert (res.code, result["outcome"]) == (3, "not_accepted"), result
    assert recorded(tmp_path, "d1") == []
    wait_until(lambda: idle(env, "d1"), timeout=20, what="d1 respawned")

    epoch = store.current_epoch(rig.conn)
    killer = threading.Thread(target=kill_when_typed)
    killer.start()
    [ident] = queue(env, "d1", text)
    killer.join()
    done = wait_state(env, ident, "delivered", timeout=40)
    assert done["attempts"] == 2 and str(done["reason"]).startswith("recovered (row 4): ")
    assert store.current_epoch(rig.conn) == epoch  # one watcher did it all
    assert recorded(tmp_path, "d1") == [text]


def test_a_stale_watcher_types_nothing(rig: Rig, tmp_path: Path) -> None:
    _fleet(rig, tmp_path, {"d1": []})
    roster = load(rig.paths.roster)
    runtime = roster.runtime_for(roster.agent("d1"))
    job = Job("d1", runtime, rig.pane("d1"), 0.5)
    stale = store.acquire(rig.conn, pid=1, now=time.time())
    current = store.acquire(rig.conn, pid=2, now=time.time())
    [ident] = store.enqueue(rig.conn, ["d1"], "only from the current epoch", time.time())
    lines: list[str] = []
    with pytest.raises(LostLease):
        serve(rig.paths, rig.tmux, stale, job, lines.append)
    assert store.get(rig.conn, [ident])[0].state is store.State.QUEUED
    assert "only from the current epoch" not in rig.screen("d1")
    # The same call with the current epoch delivers it.
    serve(rig.paths, rig.tmux, current, job, lines.append)
    assert store.get(rig.conn, [ident])[0].state is store.State.DELIVERED
    assert recorded(tmp_path, "d1") == ["only from the current epoch"]

    # The real watcher process, overtaken by a newer epoch, stops typing altogether.
    ok(rig.env, "start")
    wait_until(lambda: watcher_running(rig.env), what="watcher running")
    [first] = queue(rig.env, "d1", "before the takeover")
    wait_state(rig.env, first, "delivered")
    store.acquire(rig.conn, pid=3, now=time.time())  # a newer watcher took the lease
    [second] = queue(rig.env, "d1", "after the takeover")
    ok(rig.env, "send", "d1", "marker")  # a later event: the stale watcher had its chance
    time.sleep(1.5)
    assert message(rig.env, second)["state"] == "queued"
    assert recorded(tmp_path, "d1") == ["only from the current epoch", "before the takeover",
                                        "marker"]  # fmt: skip


def _delivering(conn: sqlite3.Connection) -> bool:
    return bool(store.listing(conn)) and any(
        m.state is store.State.DELIVERING for m in store.listing(conn)
    )


def test_forty_messages_through_watcher_kills_and_a_server_kill(
    rig: Rig, tmp_path: Path
) -> None:
    env = rig.env
    seed = int(os.environ.get("MOSAIC_TEST_SEED") or time.time())
    rng = random.Random(seed)
    agents = {"a1": ["--think", "0.1"], "a2": ["--think", "0.1", "--swallow-enter-ms", "300"]}
    up(env, demo_roster(tmp_path, agents), list(agents))
    wanted: dict[str, list[str]] = {name: [] for name in agents}
    for i in range(20):
        for name in agents:
            text = f"{name} message {i:02d} {rng.randrange(16**6):06x}"
            wanted[name].append(text)
            queue(env, name, text)
    kills = 0
    deadline = time.monotonic() + 70

    def strike() -> None:
        """Wait for a delivery under way, then a random moment into it."""
        wait_until(lambda: _delivering(rig.conn), timeout=20, interval=0.005,
                   what=f"a delivery under way (seed {seed})")  # fmt: skip
        time.sleep(rng.uniform(0.0, 0.4))

    for _ in range(3):
        running = wait_until(lambda: watcher_running(env), timeout=30, what="watcher running")
        strike()
        pid = int(running["pid"])
        os.kill(pid, signal.SIGKILL)
        kills += 1
        wait_until(lambda p=pid: not pid_alive(p), what="the watcher gone")  # type: ignore[misc]
    strike()
    tmux(env, "kill-server", check=False)
    ok(env, "start")
    for name in agents:
        wait_until(lambda n=name: idle(env, n), timeout=20, what=f"{name} back")  # type: ignore[misc]

    def all_delivered() -> bool:
        return all(m.state is store.State.DELIVERED
                   for m in store.listing(rig.conn, everything=True))  # fmt: skip

    try:
        wait_until(all_delivered, timeout=max(1.0, deadline - time.monotonic()),
                   what=f"all 40 delivered (seed {seed})")  # fmt: skip
    except AssertionError as exc:
        states = [(m.id, m.agent, str(m.state), m.attempts, m.reason)
                  for m in store.listing(rig.conn, everything=True) if m.state is not
                  store.State.DELIVERED]  # fmt: skip
        log = tmux(env, "list-sessions", check=False)
        log += tmux(env, "capture-pane", "-p", "-S", "-", "-t", "_watcher", check=False)
        raise AssertionError(f"{exc}\nnot delivered: {states}\nwatcher:\n{log}") from None
    got = {name: recorded(tmp_path, name) for name in agents}
    report = {n: {"lost": len(set(wanted[n]) - set(got[n])),
                  "twice": len(got[n]) - len(set(got[n]))} for n in agents}  # fmt: skip
    assert got == wanted, f"seed {seed}, {kills} watcher kills + 1 server kill: {report}"
