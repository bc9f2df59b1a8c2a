"""Putting the machines' answers together (pure: no I/O, testable without hosts).

Status: every agent row carries `host` (`local` for this machine), in roster order; the
document carries `hosts`, one entry per machine asked. An agent whose host did not answer
is `"state": "unknown"` with the `reason`, and every other agent reports normally
(docs/hosts.md, "Partitions").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mosaic import __version__
from mosaic.agents.liveness import AgentRunState
from mosaic.config.names import LOCAL_HOST
from mosaic.config.roster import Agent
from mosaic.hosts.remote import HostError
from mosaic.hosts.route import Done
from mosaic.screen.classify import Activity
from mosaic.send.outcome import Outcome, Result

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
    if host in errors:
        return _absent(agent, host, AgentRunState.UNKNOWN, errors[host])
    for row in docs[host].get("agents", []):
        if row.get("name") == agent.name:
            return {**row, "host": host}
    # The host's roster lacks it: it was added here since the last start/apply.
    return _absent(
        agent, host, AgentRunState.STOPPED,
        f"not in the roster on {host} yet (`mosaic fleet start {agent.name}` sends it)",
    )  # fmt: skip


def _absent(agent: Agent, host: str, state: AgentRunState, reason: str) -> dict[str, Any]:
    return {
        "name": agent.name, "runtime": agent.runtime, "state": str(state),
        "activity": str(Activity.UNKNOWN), "pid": None, "uptime_s": None, "restarts": None,
        "last_exit": None, "session": agent.name, "host": host, "reason": reason,
    }  # fmt: skip


def send_results(host: str, names: Sequence[str], doc: Any) -> list[Result]:
    """A host's `send --json` document as results, in the order the agents were given."""
    by_name: dict[str, Result] = {}
    for item in doc.get("results", []) if isinstance(doc, dict) else []:
        try:
            by_name[str(item["agent"])] = Result(
                agent=str(item["agent"]),
                outcome=Outcome(item["outcome"]),
                attempts=int(item.get("attempts") or 0),
                seconds=float(item.get("seconds") or 0.0),
                evidence=tuple(str(line) for line in item.get("evidence") or ()),
            )
        except (KeyError, TypeError, ValueError):
            continue
    missing = f"host {host} gave no result for this agent"
    return [by_name.get(n) or failed(n, missing) for n in names]


def failed(agent: str, why: str, outcome: Outcome = Outcome.NOT_RUNNING) -> Result:
    """A result for an agent nothing was typed into, with the reason as its evidence."""
    return Result(agent, outcome, 0, 0.0, (why,))


def prefixed(host: str, lines: Sequence[str]) -> list[str]:
    """A host's report lines as shown by the controller."""
    return [f"[{host}] {line}" for line in lines]
