"""Keeping agents alive: one face for both supervisors.

The CLI calls these; they dispatch on `fleet.supervisor` (decided once, `choice`). Each
supervisor is imported only when used, so a tmux-supervised fleet never pays for systemctl
plumbing and vice versa.

    supervise/tmux/      the built-in supervisor: tmux's pane-died hook restarts agents
    supervise/systemd/   systemd user units restart agents
    supervise/restartlock.py  one restart at a time across processes
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mosaic.agents.liveness import Overlay
from mosaic.config.roster import Agent, Supervisor
from mosaic.fleet import Fleet
from mosaic.tmux.panes import Pane

Progress = Callable[[], None]


def _no_progress() -> None:
    pass


def start(fleet: Fleet, agents: list[Agent], progress: Progress = _no_progress) -> list[str]:
    """Start what is not running; `progress` is called after each agent (or batch) is up."""
    if fleet.supervisor is Supervisor.SYSTEMD:
        from mosaic.supervise.systemd import supervisor as systemd

        return systemd.start(fleet, agents, progress)
    from mosaic.supervise.tmux import supervisor as tmux

    return tmux.start(fleet, agents, progress)


def stop(
    fleet: Fleet, agents: list[Agent], whole: bool, progress: Progress = _no_progress
) -> list[str]:
    """Stop agents (and the holder when `whole`); `progress` after each agent is down."""
    if fleet.supervisor is Supervisor.SYSTEMD:
        from mosaic.supervise.systemd import supervisor as systemd

        return systemd.stop(fleet, agents, whole, progress)
    from mosaic.supervise.tmux import supervisor as tmux

    return tmux.stop(fleet, agents, whole, progress)


def restart(fleet: Fleet, agents: list[Agent], whole: bool) -> list[str]:
    """Stop then start under the restart lock, for either supervisor; `whole` restarts
    every roster agent, starting stopped ones too. Each agent stopped or started is
    reported as progress, so a long restart that keeps going is never taken for a hung one
    by a waiting restart."""
    from mosaic.supervise.restartlock import restart_lock

    with restart_lock(fleet.paths.restart_lock) as held:
        if fleet.supervisor is Supervisor.SYSTEMD:
            from mosaic.supervise.systemd import supervisor as systemd

            return systemd.restart(fleet, agents, whole, held.progress)
        lines = stop(fleet, agents, whole, held.progress)
        return lines + start(fleet, agents, held.progress)


def overlay(
    fleet: Fleet, agents: list[Agent], panes: Mapping[str, Pane]
) -> Overlay | None:
    """What the supervisor knows better than the panes (None for the tmux supervisor)."""
    if fleet.supervisor is Supervisor.SYSTEMD:
        from mosaic.supervise.systemd import supervisor as systemd

        return systemd.status_overlay(fleet, agents, panes)
    return None

