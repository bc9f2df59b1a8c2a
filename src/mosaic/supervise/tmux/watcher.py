"""The watcher under the tmux supervisor: the process of the session `_watcher` on the
fleet's private server, restarted by the same pane-died hook as the agents (`hooks.py`),
with its own supervision record (restart policy `always`, the same backoff; five quick
crashes in a row and it is left `failed` until the next start).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

from mosaic.agents import state
from mosaic.agents.state import AgentState, Desired
from mosaic.agents.teardown import kill_session
from mosaic.base import procs
from mosaic.config.names import WATCHER_SESSION
from mosaic.config.roster import RestartPolicy
from mosaic.errors import TmuxError
from mosaic.fleet import Fleet
from mosaic.tmux import server
from mosaic.tmux.panes import int_or_zero, list_panes

STOP_GRACE_S = 5.0


def argv() -> list[str]:
    return [sys.executable, "-m", "mosaic.watch"]


def _armed(now: float) -> AgentState:
    return AgentState(desired=Desired.RUNNING, restart_policy=RestartPolicy.ALWAYS,
                      started_at=now)  # fmt: skip


def ensure(fleet: Fleet) -> str:
    """Start the watcher unless it runs; one line for the operator."""
    panes = list_panes(fleet.tmux) or {}
    pane = panes.get(WATCHER_SESSION)
    if pane is not None and not pane.dead:
        return f"watcher: already running (pid {pane.pid})"
    now = time.time()
    state.update(fleet.paths, WATCHER_SESSION,
                 lambda s: replace(_armed(now), generation=s.generation + 1))  # fmt: skip
    if pane is not None:
        kill_session(fleet.tmux, WATCHER_SESSION)
    env_args: list[str] = []
    env = server.hook_environment(fleet.paths, fleet.tmux.socket)
    env["PATH"] = os.environ.get("PATH", os.defpath)
    for key, value in env.items():
        env_args += ["-e", f"{key}={value}"]
    try:
        out = fleet.tmux.out(
            "new-session", "-d", "-s", WATCHER_SESSION, "-c", str(fleet.paths.home), *env_args,
            "-P", "-F", "#{pane_pid}", "--", *argv(),
        )  # fmt: skip
    except TmuxError as exc:
        if "duplicate session" not in exc.message:
            raise
        return "watcher: already running"
    pid = int_or_zero(out.strip())
    state.update(fleet.paths, WATCHER_SESSION, lambda s: replace(s, pid=pid))
    return f"watcher: started (pid {pid})"


def stop(fleet: Fleet) -> str | None:
    """Stop the watcher (SIGTERM: it finishes its tick and hands over what is left to
    notify), SIGKILL after a grace; None when it was not running."""
    state.update(fleet.paths, WATCHER_SESSION, state.disarmed)
    pane = (list_panes(fleet.tmux) or {}).get(WATCHER_SESSION)
    if pane is None:
        return None
    if not pane.dead and pane.pid > 0:
        procs.terminate([pane.pid], grace=STOP_GRACE_S)
    kill_session(fleet.tmux, WATCHER_SESSION)
    return "watcher: stopped"
