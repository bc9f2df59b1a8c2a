"""One face for both supervisors: the CLI calls these, they dispatch on `fleet.supervisor`.

Each supervisor module is imported only when used, so a tmux-supervised fleet never pays
for systemctl plumbing and vice versa.
"""

from __future__ import annotations

from mosaic.fleet import Fleet
from mosaic.roster import Agent


def start(fleet: Fleet, agents: list[Agent]) -> list[str]:
    if fleet.supervisor == "systemd":
        from mosaic import systemdsup

        return systemdsup.start(fleet, agents)
    from mosaic import tmuxsup

    return tmuxsup.start(fleet, agents)


def stop(fleet: Fleet, agents: list[Agent], whole: bool) -> list[str]:
    if fleet.supervisor == "systemd":
        from mosaic import systemdsup

        return systemdsup.stop(fleet, agents, whole)
    from mosaic import tmuxsup

    return tmuxsup.stop(fleet, agents, whole)


def restart(fleet: Fleet, agents: list[Agent], whole: bool) -> list[str]:
    """Stop then start under the restart lock (SPEC §6), for either supervisor; `whole`
    restarts every roster agent, starting stopped ones too."""
    from mosaic.restartlock import restart_lock

    with restart_lock(fleet.paths.restart_lock):
        if fleet.supervisor == "systemd":
            from mosaic import systemdsup

            return systemdsup.restart(fleet, agents, whole)
        lines = stop(fleet, agents, whole)
        return lines + start(fleet, agents)
