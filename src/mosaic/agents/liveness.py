"""Is an agent's runtime alive, from its pane and its record: the one definition of the
agent states `running`, `starting`, `stopped` and `failed` under the tmux supervisor.

Under systemd the unit's state refines this (`supervise.systemd.supervisor.unit_state`),
and an `Overlay` carries what systemd knows better than the panes do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from mosaic.agents.state import AgentState, Desired
from mosaic.base import procs
from mosaic.config.runtimes import Runtime
from mosaic.tmux.panes import Pane

# A pane younger than this whose command is not yet the runtime is still "starting".
STARTING_GRACE_S = 5.0


class AgentRunState(StrEnum):
    RUNNING = "running"
    STARTING = "starting"
    STOPPED = "stopped"
    FAILED = "failed"
    UNKNOWN = "unknown"  # its host could not be asked


def runtime_alive(pane: Pane, runtime: Runtime) -> bool:
    """The runtime's own process is in the pane: as the foreground command, or as the
    pane's process itself with a child in the foreground (a shell running a command)."""
    if pane.dead:
        return False
    if pane.command in runtime.processes:
        return True
    return not procs.names(pane.pid).isdisjoint(runtime.processes)


def runtime_in_front(pane: Pane, runtime: Runtime) -> bool:
    """The runtime itself owns the pane's terminal, so typed text goes to it (not to a child
    a shell runs in the foreground).

    tmux's pane_current_command is argv[0] of the foreground process: for a program run by
    an interpreter (aider: `python3.11`) that names the interpreter, whose version varies, so
    then the foreground process's own names decide (`procs.names`). Other commands cost no
    /proc read, which keeps `status` of a large fleet cheap.
    """
    if pane.dead:
        return False
    if pane.command in runtime.processes:
        return True
    if not procs.is_interpreter(pane.command):
        return False
    leader = procs.foreground(pane.pid)
    return leader is not None and not procs.names(leader).isdisjoint(runtime.processes)


def pane_state(
    pane: Pane | None, record: AgentState, runtime: Runtime, now: float
) -> AgentRunState:
    """The agent's state as the tmux supervisor sees it: pane plus supervision record."""
    if pane is None or pane.dead:
        if record.failed:
            return AgentRunState.FAILED
        if pane is not None and record.desired is Desired.RUNNING:
            return AgentRunState.STARTING  # the pane-died hook is deciding, or a respawn is due
        return AgentRunState.STOPPED
    if runtime_alive(pane, runtime):
        return AgentRunState.RUNNING
    if record.started_at is not None and now - record.started_at < STARTING_GRACE_S:
        return AgentRunState.STARTING
    return AgentRunState.STOPPED


@dataclass(frozen=True)
class Overlay:
    """What a supervisor knows better than the panes do (systemd: unit states, its restart
    count, the holder unit); the pane part of status (runtime pid, screens) stays shared."""

    holder: str
    states: Mapping[str, AgentRunState]
    restarts: Mapping[str, int]
