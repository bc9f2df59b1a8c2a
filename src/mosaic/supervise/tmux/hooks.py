"""What tmux runs when an agent's runtime exits (`python -m mosaic.hooks ...`).

`pane-died PANE_ID`: tmux's hook (remain-on-exit keeps the pane). It looks up the pane's
session and exit status itself — only the pane id (`%N`) ever passes through the shell, so
no session name, however hostile, can reach one — records the exit and, per the restart
policy, asks tmux to run `respawn` after the backoff delay (`run-shell -d`), so no process
of ours lives during the wait. Paths and socket come from the server's environment
(`tmux.server.hook_environment`); which supervisor runs the fleet comes from its record
(or, without one, from the cgroup the hook shares with the server: `choice.for_server`).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from dataclasses import replace

from mosaic.agents import state
from mosaic.agents.state import AgentState, Desired
from mosaic.config.eventtypes import EventType
from mosaic.config.names import WATCHER_SESSION, is_agent_name
from mosaic.config.paths import Paths, resolve
from mosaic.config.roster import Supervisor
from mosaic.store import events
from mosaic.supervise import choice
from mosaic.supervise.tmux import backoff
from mosaic.tmux import transcript
from mosaic.tmux.client import SEP, Tmux, format_literal
from mosaic.tmux.panes import list_panes
from mosaic.tmux.server import make_tmux

_PANE_ID = re.compile(r"%\d+")


def _context() -> tuple[Paths, Tmux]:
    paths = resolve(env=dict(os.environ))
    return paths, make_tmux(paths, os.environ["MOSAIC_TMUX_SOCKET"])


def pane_died(pane_id: str) -> None:
    paths, tmux = _context()
    fmt = SEP.join(("#{session_name}", "#{pane_dead_status}", "#{pane_dead_signal}"))
    proc = tmux.run("display-message", "-p", "-t", pane_id, fmt, check=False)
    fields = proc.stdout.decode("utf-8", errors="replace").rstrip("\n").split(SEP)
    if proc.returncode != 0 or len(fields) != 3:
        return  # the pane is gone already
    name, status, signal = fields
    is_watcher = name == WATCHER_SESSION
    if not is_agent_name(name) and not is_watcher:
        return  # not an agent's session: nothing of ours to supervise
    code = backoff.exit_code(status, signal)
    now = time.time()
    if choice.for_server(paths) is Supervisor.SYSTEMD:
        if not is_watcher:
            # systemd restarts the unit (and `unitexec exited` records the exit); we only
            # keep the record that `status` reads.
            state.update(paths, name, lambda s: replace(s, last_exit=code, pid=None))
        return
    decided: list[backoff.RestartDecision] = []
    wanted: list[bool] = []

    def change(current: AgentState) -> AgentState:
        wanted.append(current.desired is Desired.RUNNING)
        decided.append(backoff.on_exit(current, code, now))
        return decided[0].state

    new = state.update(paths, name, change)
    delay = decided[0].delay
    if wanted[0] and not is_watcher:
        # An operator's stop (disarmed before the kill) is reported as `stopped` instead.
        happened = [events.draft(name, EventType.EXITED, code=code)]
        if delay is not None:
            happened.append(events.draft(name, EventType.RESTARTING, delay_s=round(delay, 3)))
        elif new.failed:
            happened.append(events.draft(name, EventType.FAILED))
        events.record(paths.db, happened)
    if delay is not None:
        command = (
            '"$MOSAIC_HOOK_PYTHON" -m mosaic.hooks respawn '
            + shlex.join([name, str(new.generation)])
            + ' 2>>"$MOSAIC_HOOKS_LOG"'
        )
        tmux.run("run-shell", "-b", "-d", f"{delay:.3f}", format_literal(command))


def respawn(name: str, generation: int) -> None:
    """Respawn the dead pane unless an operator acted (new generation) since the crash."""
    paths, tmux = _context()

    with state.transaction(paths, name) as txn:
        current = txn.current
        if (
            current.desired is not Desired.RUNNING
            or current.generation != generation
            or current.failed
        ):
            return
        pane = (list_panes(tmux) or {}).get(name)
        if pane is None or not pane.dead:
            txn.save(replace(current, respawn_due=None))
            return
        # Recorded before the pane comes back, so no reader sees a new pid with old counts.
        txn.save(replace(current, restarts=current.restarts + 1, started_at=time.time(),
                         respawn_due=None))  # fmt: skip
        tmux.run("respawn-pane", "-t", pane.id)
        pid = tmux.out("display-message", "-p", "-t", pane.id, "#{pane_pid}").strip()
        if name != WATCHER_SESSION:
            transcript.attach(tmux, paths, name, pane.id)
        txn.save(replace(txn.current, pid=int(pid) if pid.isdigit() else None))
    if name != WATCHER_SESSION and pid.isdigit():
        events.record(paths.db, [events.draft(name, EventType.STARTED, pid=int(pid))])


def main(argv: list[str]) -> int:
    if argv[:1] == ["pane-died"] and len(argv) in (2, 5):
        # Five words: the form servers started by mosaic 0.1 still call (NAME PANE STATUS
        # SIGNAL); only the pane id is trusted from either.
        pane_id = argv[1] if len(argv) == 2 else argv[2]
        if _PANE_ID.fullmatch(pane_id):
            pane_died(pane_id)
        return 0
    if (
        argv[:1] == ["respawn"]
        and len(argv) == 3
        and (is_agent_name(argv[1]) or argv[1] == WATCHER_SESSION)
        and argv[2].isdigit()
    ):
        respawn(argv[1], int(argv[2]))
        return 0
    print(f"usage: python -m mosaic.hooks pane-died PANE_ID | respawn AGENT GENERATION "
          f"(got {argv!r})", file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
