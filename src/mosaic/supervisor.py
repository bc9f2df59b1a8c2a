"""One face for both supervisors: the CLI calls these, they dispatch on `fleet.supervisor`."""

from __future__ import annotations

from mosaic import tmuxsup
from mosaic.fleet import Fleet
from mosaic.roster import Agent


def start(fleet: Fleet, agents: list[Agent]) -> list[str]:
    return tmuxsup.start(fleet, agents)


def stop(fleet: Fleet, agents: list[Agent], whole: bool) -> list[str]:
    return tmuxsup.stop(fleet, agents, whole)


def restart(fleet: Fleet, agents: list[Agent], whole: bool) -> list[str]:
    """Stop then start under the restart lock (SPEC §6); `whole` restarts every roster
    agent, starting stopped ones too."""
    from mosaic.restartlock import restart_lock

    with restart_lock(fleet.paths.restart_lock):
        lines = stop(fleet, agents, whole)
        return lines + start(fleet, agents)
