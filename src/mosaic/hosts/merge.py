"""Putting the machines' status answers together (pure: no I/O, testable without hosts).

Status: every agent row carries `host` (`local` for this machine), in roster order; the
document carries `hosts`, one entry per machine asked. An agent whose host did not answer
is `"state": "unknown"` with the `reason`, and every other agent reports normally
(docs/hosts.md, "Partitions").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mosaic import __version__
from mosaic.config.names import LOCAL_HOST
from mosaic.config.roster import Agent
from mosaic.hosts.remote import HostError
from mosaic.hosts.route import Done

# What a host's status entry copies from that host's own status document.
HOST_FIELDS = ("supervisor", "socket", "holder")


def status(
    selected: Sequence[Agent], done: Sequence[Done[dict[str, Any]]], top: Mapping[str, Any]
) -> dict[str, Any]:
    """One status document from each machine's. `top` supplies the fleet-level fields
    when this machine was not asked (no local agent was selected)."""
    docs: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    hosts: list[dict[str, Any]] = []
    for d in done:
        name = d.part.name
        entry: dict[str, Any] = {
            "name": name, "reachable": True, "latency_ms": round(d.seconds * 1000, 1),
            "version": None, "error": None,
        }  # fmt: skip
        if d.error is not None:
            reachable = not isinstance(d.error, HostError) or d.error.reachable
            reason = d.error.reason if isinstance(d.error, HostError) else d.error.message
            entry.update(reachable=reachable, error=reason)
            if not reachable:
                entry["latency_ms"] = None
            errors[name] = reason
        else:
            assert d.value is not None
            doc = docs[name] = d.value
            entry["version"] = __version__ if d.part.host is None else doc.get("version")
            entry.update({k: doc[k] for k in HOST_FIELDS if k in doc})
        hosts.append(entry)
    rows = [_row(agent, docs, errors) for agent in selected]
    local = docs.get(LOCAL_HOST)
    out = dict(local) if local is not None else {**top}
    out["version"] = __version__
    out["agents"] = rows
    out["hosts"] = hosts
    return out


def _row(agent: Agent, docs: Mapping[str, dict[str, Any]], errors: Mapping[str, str]) -> Any:
    host = agent.host or LOCAL_HOST
    if host not in errors:
        for row in docs[host].get("agents", []):
            if row.get("name") == agent.name:
                return {**row, "host": host}
    from mosaic.agents.liveness import AgentRunState

    if host in errors:
        return _absent(agent, host, AgentRunState.UNKNOWN, errors[host])
    # The host's roster lacks it: it was added here since the last start/apply.
    return _absent(
        agent, host, AgentRunState.STOPPED,
        f"not in the roster on {host} yet (`mosaic fleet start {agent.name}` sends it)",
    )  # fmt: skip


def _absent(agent: Agent, host: str, state: str, reason: str) -> dict[str, Any]:
    """A row for an agent its host did not report (imports kept here: a remote-only
    controller never loads the pane and screen machinery otherwise)."""
    from mosaic.screen.classify import Activity

    return {
        "name": agent.name, "runtime": agent.runtime, "state": str(state),
        "activity": str(Activity.UNKNOWN), "pid": None, "uptime_s": None, "restarts": None,
        "last_exit": None, "session": agent.name, "host": host, "reason": reason,
    }  # fmt: skip


def prefixed(host: str, lines: Sequence[str]) -> list[str]:
    """A host's report lines as shown by the controller."""
    return [f"[{host}] {line}" for line in lines]
