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
    from mosaic.base import procs  # lazily: the usual pane (runtime in front) needs no /proc

    info = procs.info(pane.pid)
    return info is not None and info.comm in runtime.processes


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
