"""Entry points that tmux itself runs (`python -m mosaic.hooks ...`).

`pane-died` is tmux's hook when an agent's runtime exits (remain-on-exit keeps the pane);
it records the exit and, per the restart policy, asks tmux to run `respawn` after the
backoff delay (`run-shell -d`), so no process of ours lives during the wait. The paths and
socket come from the server's global environment, published by `session.ensure_server`.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import replace

from mosaic import backoff, session, state
from mosaic.paths import Paths, resolve
from mosaic.state import AgentState
from mosaic.tmux import Tmux

_AGENT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _context() -> tuple[Paths, Tmux, str]:
    paths = resolve(env=dict(os.environ))
    tmux = session.make_tmux(paths, os.environ["MOSAIC_TMUX_SOCKET"])
    return paths, tmux, os.environ.get("MOSAIC_FLEET_SUPERVISOR", "tmux")


def pane_died(name: str, status: str, signal: str) -> None:
    paths, tmux, supervisor = _context()
    code = backoff.exit_code(status, signal)
    now = time.time()
    if supervisor == "systemd":
        # systemd restarts the unit; we only keep the record that `status` reads.
        state.update(paths, name, lambda s: replace(s, last_exit=code, pid=None))
        return
    decided: list[backoff.Decision] = []

    def change(current: AgentState) -> AgentState:
        decided.append(backoff.on_exit(current, code, now))
        return decided[0].state

    new = state.update(paths, name, change)
    delay = decided[0].delay
    if delay is not None:
        command = (
            f'"$MOSAIC_HOOK_PYTHON" -m mosaic.hooks respawn {name} {new.generation} '
            '2>>"$MOSAIC_HOME/fleet/run/hooks.err"'
        )
        tmux.run("run-shell", "-b", "-d", f"{delay:.3f}", command)


def respawn(name: str, generation: int) -> None:
    """Respawn the dead pane unless an operator acted (new generation) since the crash."""
    paths, tmux, _ = _context()

    with state.transaction(paths, name) as txn:
        current = txn.current
        if current.desired != "running" or current.generation != generation or current.failed:
            return
        pane = (session.list_panes(tmux) or {}).get(name)
        if pane is None or not pane.dead:
            txn.save(replace(current, respawn_due=None))
            return
        # Recorded before the pane comes back, so no reader sees a new pid with old counts.
        txn.save(replace(current, restarts=current.restarts + 1, started_at=time.time(),
                         respawn_due=None))  # fmt: skip
        tmux.run("respawn-pane", "-t", pane.id)
        pid = tmux.out("display-message", "-p", "-t", pane.id, "#{pane_pid}").strip()
        session.attach_transcript(tmux, paths, name, pane.id)
        txn.save(replace(txn.current, pid=int(pid) if pid.isdigit() else None))


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and not _AGENT_NAME.match(argv[1]):
        return 0  # not an agent session (nothing else should live on the socket)
    if argv[:1] == ["pane-died"] and len(argv) == 5:
        pane_died(argv[1], argv[3], argv[4])
        return 0
    if argv[:1] == ["respawn"] and len(argv) == 3 and argv[2].isdigit():
        respawn(argv[1], int(argv[2]))
        return 0
    print(f"usage: python -m mosaic.hooks pane-died|respawn ... (got {argv})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
