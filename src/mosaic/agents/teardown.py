"""Stopping an agent: its whole process tree, then its session.

Measured: Codex and Claude Code survive the SIGHUP of `tmux kill-session`, so a stop asks
the runtime to quit with its own keys, then signals every process of the pane's tree and
confirms they are gone.
"""

from __future__ import annotations

from mosaic.base import procs
from mosaic.config.runtimes import Runtime
from mosaic.errors import OperationFailed, TmuxError
from mosaic.tmux.client import Tmux, literal
from mosaic.tmux.panes import Pane

REPEAT_KEY_GAP_S = 0.2


def kill_tree(tmux: Tmux, pane: Pane, runtime: Runtime, grace: float = 3.0) -> None:
    """Stop the pane's whole process tree: quit keys, SIGTERM, SIGKILL; confirm it is gone."""
    if pane.dead or pane.pid <= 0:
        return
    members = procs.tree(pane.pid)
    if runtime.quit_keys and procs.alive(pane.pid):
        try:
            previous = None
            for key in runtime.quit_keys:
                # A repeated key confirms the first ("press Ctrl+C again to exit"), which a
                # TUI counts only once it has handled the first: give it that time, and stop
                # pressing once the runtime is gone.
                if key == previous and not procs.wait_gone([pane.pid], REPEAT_KEY_GAP_S):
                    break
                tmux.run("send-keys", "-t", pane.id, literal(key))
                previous = key
            procs.wait_gone([pane.pid], 1.5)
        except TmuxError:
            pass
    # Re-read: the tree may have grown since; keep what we saw first too (reparented kids).
    members = sorted(set(members) | set(procs.tree(pane.pid)))
    survivors = procs.terminate([p for p in members if procs.alive(p)], grace=grace)
    if survivors:
        raise OperationFailed(f"agent {pane.session}: processes {survivors} survived SIGKILL")


def kill_session(tmux: Tmux, name: str) -> None:
    proc = tmux.run("kill-session", "-t", f"={name}", check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        if "can't find session" not in err and "no server running" not in err:
            raise TmuxError(f"tmux kill-session: {err.strip()}")
