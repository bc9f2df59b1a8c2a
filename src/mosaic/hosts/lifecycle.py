"""start / stop / restart on every machine concerned (docs/hosts.md): the one copy that the
command line (`cli/run_cmds`) and the dashboard (`web/actions`) both run."""

from __future__ import annotations

from mosaic.config.paths import Paths
from mosaic.hosts import hostroster, route
from mosaic.hosts.remote import Remote


def run(paths: Paths, agent: str | None, action: str) -> list[route.Done[list[str]]]:
    """Run one supervisor action on AGENT or the whole fleet, on each machine at once; each
    machine's report lines, or its error (`route.raise_failures` after showing the rest)."""
    from mosaic import supervise
    from mosaic.config.load import load
    from mosaic.fleet import open_fleet
    from mosaic.hosts import merge

    roster = load(paths.roster, cache_dir=paths.run)
    agents = roster.select(agent)
    whole = agent is None
    parts = route.split(roster, agents, every_host=whole and action == "stop",
                        this_machine=whole)  # fmt: skip

    def local(part: route.Part) -> list[str]:
        fleet = open_fleet(paths, deciding=action != "stop", roster=roster)
        mine = list(part.agents)
        if action == "start":
            return supervise.start(fleet, mine)
        if action == "stop":
            return supervise.stop(fleet, mine, whole=whole)
        return supervise.restart(fleet, mine, whole=whole)

    def watcher_only(part: route.Part) -> list[str]:
        """A controller of remote agents alone runs the fleet's watcher all the same (it
        serves `status --json`, asking the hosts: docs/hosts.md, "What runs where"). It
        is not what the command is for: where it cannot run (no tmux here), the command
        still succeeds and says why."""
        from mosaic.errors import MosaicError

        try:
            return local(part)
        except MosaicError as exc:
            done = {"start": "started", "stop": "stopped", "restart": "restarted"}[action]
            return [f"watcher: not {done} on this machine: {exc.message}"]

    def remote(host: Remote, part: route.Part) -> list[str]:
        if action != "stop":
            # What starts there is what the roster says now.
            host.push_roster(hostroster.part_for(paths, part.name))
        return merge.prefixed(part.name, host.lines([action, *([agent] if agent else [])]))

    alone = bool(roster.hosts) and all(a.host is not None for a in agents)
    return route.each(paths, parts, watcher_only if alone else local, remote)

