"""The whole fleet's status document, every machine merged (docs/hosts.md): what
`status --json` prints, whichever path (click or the click-free one) answers it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mosaic.config.load import load
from mosaic.config.paths import Paths
from mosaic.config.roster import Roster, effective_socket, effective_supervisor
from mosaic.errors import OperationFailed
from mosaic.hosts import merge, route
from mosaic.hosts.remote import STATUS, Remote


def document(
    paths: Paths,
    agent: str | None,
    *,
    env: Mapping[str, str] | None = None,
    roster: Roster | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """(the status document of AGENT or every agent, the hosts' errors to tell stderr).

    This machine's fleet (supervisor, tmux) is opened only when one of its agents is asked
    about: a controller of remote agents alone pays for none of it. This machine's own
    trouble is raised, as without hosts; a host's is reported in the document.
    `env`: the caller's environment when it is not this process's (the watcher serving a
    command, `watch/serve.py`); `roster`: already loaded with that environment.
    """
    if roster is None:
        roster = load(paths.roster, env=env, cache_dir=paths.run)
    selected = roster.select(agent)
    parts = route.split(roster, selected, every_host=agent is None)
    top = {"supervisor": str(effective_supervisor(roster, env)),
           "socket": effective_socket(roster, env),
           "holder": "stopped", "restart_in_progress": None,
           "watcher": _watcher(paths)}  # fmt: skip

    def local(part: route.Part) -> dict[str, Any]:
        from mosaic.agents import status
        from mosaic.fleet import open_fleet

        fleet = open_fleet(paths, env, roster=roster)
        return status.collect(fleet, list(part.agents))

    def remote(host: Remote, part: route.Part) -> dict[str, Any]:
        doc, _ = host.json(STATUS)
        if not isinstance(doc, dict):
            raise OperationFailed(f"host {host.name}: status is not a JSON object")
        return doc

    done = route.each(paths, parts, local, remote, env)
    for d in done:
        if d.error is not None and d.part.host is None:
            raise d.error
    errors = [d.error.message for d in done if d.error is not None]
    return merge.status(selected, done, top), errors


def _watcher(paths: Paths) -> dict[str, Any]:
    """This machine's watcher, which runs on a controller of remote agents alone too (it
    serves this very document, `watch/serve.py`): read from its heartbeat, as with agents."""
    import time

    from mosaic.watch import beat

    return beat.read(paths.watcher_heartbeat, time.time()).as_json()
