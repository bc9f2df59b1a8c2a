"""`approve` on whichever machine the agent is (docs/hosts.md, "Approve"): the one copy that
the command line (`cli/approve_cmd`) and the dashboard (`web/actions`) both run."""

from __future__ import annotations

from typing import Any

from mosaic.config.paths import Paths
from mosaic.hosts.remote import Remote


def approve_named(
    paths: Paths, agent: str, deny: bool, timeout: float
) -> tuple[dict[str, Any], int]:
    """(the `approve --json` document, its exit code) for AGENT: answered on this machine's
    screen, or by the host's own `approve --json` there. With hosts in the roster the
    document names the machine (`host`)."""
    from mosaic.config.load import load
    from mosaic.hosts import route

    roster = load(paths.roster, cache_dir=paths.run)
    host = route.remote_for(paths, roster, agent)
    if host is not None:
        doc, code = remote(host, agent, deny, timeout)
    else:
        from mosaic.fleet import open_fleet
        from mosaic.send.approve import approve

        fleet = open_fleet(paths, roster=roster)
        runtime = roster.runtime_for(roster.agent(agent))
        res = approve(fleet.tmux, paths, agent, runtime, deny, timeout)
        doc, code = res.as_json(), int(res.exit_code)
    if roster.hosts:
        from mosaic.config.names import LOCAL_HOST

        doc["host"] = LOCAL_HOST if host is None else host.name
    return doc, code


def remote(host: Remote, agent: str, deny: bool, timeout: float) -> tuple[dict[str, Any], int]:
    """The host's own `approve --json`: its document and exit code (0, 1 or 3); anything
    else is the host's error, as a HostError naming it."""
    from mosaic.hosts.remote import QUICK_S, HostError

    args = ["approve", agent, "--json", "--timeout", repr(timeout), *(["--deny"] if deny else [])]
    # The host waits for the agent's send lock first (a send in progress), as `send` does.
    doc, reply = host.json(args, timeout=timeout * 3 + QUICK_S, ok=(0, 1, 3))
    if not isinstance(doc, dict) or "outcome" not in doc:
        raise HostError(host.name, f"host {host.name}: approve gave no answer for {agent}")
    return doc, reply.code
