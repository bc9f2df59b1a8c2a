"""Helpers for outbox tests: demo agents that record what they received (the ground truth),
queueing and reading the outbox as a user does, and stopping the watcher for a while."""

from __future__ import annotations

import json
import os
import signal
from functools import partial
from pathlib import Path
from typing import Any

from fleetkit import agent, ok, tmux, write_roster
from helpers import pid_alive, wait_until
from mosaic.demo_agent import read_recording
from watchkit import watcher_running

Message = dict[str, Any]


def demo_roster(tmp: Path, agents: dict[str, list[str]], extra: str = "") -> str:
    """Demo agents, each recording what it receives in tmp/NAME.rec (`recorded`)."""
    lines = ["version: 1", "agents:"]
    for name, args in agents.items():
        rec = str(tmp / f"{name}.rec")
        lines += [f"  - name: {name}", "    runtime: demo",
                  f"    args: {json.dumps([*args, '--record', rec])}"]  # fmt: skip
    return "\n".join(lines) + "\n" + extra


def recorded(tmp: Path, name: str) -> list[str]:
    """What the agent took, in order, across its restarts (the record file is appended)."""
    path = tmp / f"{name}.rec"
    return read_recording(str(path)) if path.exists() else []


def idle(env: dict[str, str], name: str) -> bool:
    row = agent(env, name)
    return bool(row["state"] == "running" and row["activity"] == "idle")


def up(env: dict[str, str], body: str, names: list[str], *, start: bool = True) -> None:
    write_roster(env, body)
    if not start:
        return
    ok(env, "start")
    for name in names:
        wait_until(partial(idle, env, name), timeout=20, what=f"{name} idle")
    wait_until(lambda: watcher_running(env), what="watcher running")


def queue(env: dict[str, str], *args: str, input: str | None = None) -> list[int]:
    out = ok(env, "send", "--queue", "--json", *args, input=input).out
    return [int(m["id"]) for m in json.loads(out)["messages"]]


def box(env: dict[str, str], *args: str) -> list[Message]:
    found: list[Message] = json.loads(ok(env, "outbox", "--json", *args).out)["messages"]
    return found


def message(env: dict[str, str], ident: int) -> Message:
    return next(m for m in box(env, "--all") if m["id"] == ident)


def wait_state(env: dict[str, str], ident: int, state: str, timeout: float = 30) -> Message:
    return wait_until(
        lambda: (m := message(env, ident))["state"] == state and m,
        timeout=timeout, interval=0.1, what=f"message {ident} {state}",
    )  # fmt: skip


def stop_watcher(env: dict[str, str]) -> None:
    """End the watcher for good (until the next `start`): its session first, so the
    pane-died hook does not bring it back, then the process itself."""
    running = wait_until(lambda: watcher_running(env), what="watcher running")
    tmux(env, "kill-session", "-t", "_watcher", check=False)
    pid = int(running["pid"])
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), what="the watcher gone")
