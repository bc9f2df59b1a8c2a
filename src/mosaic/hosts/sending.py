"""`send` across machines (docs/hosts.md): each machine types into its own agents.

The message travels to a host on ssh's stdin (`send ... -` there), never on a command line,
so 64 KiB, quotes, `$(...)` and newlines arrive as typed. Each host verifies delivery on
its own screens, exactly as a local send does, and answers with its `--json` results.

"Nothing is typed anywhere when a target is not running" holds across machines too: when
the targets span several machines, each is asked first (one parallel round of `status`,
or the local pane check), and a target that is not running (or a host that does not
answer) stops the whole send before anything is typed. A target that stops between that
check and its own host's send is refused by that host alone, as locally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mosaic.config.paths import Paths
from mosaic.config.roster import Agent, Roster
from mosaic.fleet import Fleet
from mosaic.hosts import route
from mosaic.hosts.remote import QUICK_S, Remote
from mosaic.send import delivery
from mosaic.send.judge import FOREGROUND_WAIT_S
from mosaic.send.outcome import Outcome, Result

Sent = tuple[Result, str]  # a result and the machine it came from


def send(
    paths: Paths,
    roster: Roster,
    fleet: Fleet | None,
    chosen: Sequence[Agent],
    message: str,
    timeout: float,
    verify: bool,
) -> list[Sent]:
    """Deliver `message` to every chosen agent; results in `chosen` order. `fleet` is this
    machine's, needed only when a chosen agent is local."""
    parts = route.split(roster, chosen)
    where = {a.name: part.name for part in parts for a in part.agents}
    if len(parts) > 1:
        blocked = _not_running(paths, fleet, parts)
        if blocked:
            skipped = f"(not sent: {', '.join(blocked)} not running)"
            return [
                (failed(a.name, blocked[a.name]), where[a.name])
                if a.name in blocked
                else (failed(a.name, skipped, Outcome.SKIPPED), where[a.name])
                for a in chosen
            ]

    def local(part: route.Part) -> list[Result]:
        assert fleet is not None
        targets = [(a.name, roster.runtime_for(a)) for a in part.agents]
        return delivery.send(fleet.tmux, paths, targets, message, timeout, verify)

    def remote(host: Remote, part: route.Part) -> list[Result]:
        args = ["send", *part.names, "--json", "--timeout", repr(timeout)]
        args += [*([] if verify else ["--no-verify"]), "-"]
        # Each agent's timeout starts when its send lock is free: allow for a wait.
        doc, _ = host.json(args, message.encode(), timeout * 3 + QUICK_S, ok=(0, 1, 3))
        return send_results(host.name, part.names, doc)

    done = route.each(paths, parts, local, remote)
    out: dict[str, Sent] = {}
    for d in done:
        if d.error is not None:
            if len(parts) == 1 and d.part.host is None:
                raise d.error  # a single-machine send fails as it always did
            for name in d.part.names:
                out[name] = (failed(name, d.error.message), d.part.name)
            continue
        for r in d.value or []:
            out[r.agent] = (r, d.part.name)
    return [out[a.name] for a in chosen]


def send_named(
    paths: Paths, names: Sequence[str], message: str, timeout: float, verify: bool
) -> list[Sent]:
    """`send NAME... MESSAGE`: every name checked against the roster before anything is
    typed anywhere, this machine's fleet opened only when one of them is local."""
    from mosaic.config.load import load
    from mosaic.fleet import open_fleet

    roster = load(paths.roster, cache_dir=paths.run)
    chosen = [roster.agent(name) for name in names]
    fleet = open_fleet(paths, roster=roster) if any(a.host is None for a in chosen) else None
    return send(paths, roster, fleet, chosen, message, timeout, verify)


def results_json(sent: Sequence[Sent]) -> dict[str, Any]:
    """The document `send --json` prints."""
    return {"results": [{**r.as_json(), "host": host} for r, host in sent]}


def _not_running(
    paths: Paths, fleet: Fleet | None, parts: Sequence[route.Part]
) -> dict[str, str]:
    """Targets that cannot take a message now (name -> why), asked of every machine."""

    def local(part: route.Part) -> dict[str, str]:
        assert fleet is not None
        targets = [(a.name, fleet.roster.runtime_for(a)) for a in part.agents]
        planned = delivery.plan(fleet.tmux, targets, FOREGROUND_WAIT_S)
        return {r.agent: " ".join(r.evidence) for r in planned.refused}

    def remote(host: Remote, part: route.Part) -> dict[str, str]:
        doc, _ = host.json(["status", "--json"])
        rows = {row.get("name"): row for row in doc.get("agents", [])}
        return {
            name: f"({host.name}: {rows.get(name, {}).get('state', 'not in its roster')})"
            for name in part.names
            if rows.get(name, {}).get("state") != "running"
        }

    blocked: dict[str, str] = {}
    for d in route.each(paths, parts, local, remote):
        if d.error is not None:
            blocked.update({name: d.error.message for name in d.part.names})
        else:
            blocked.update(d.value or {})
    return blocked


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
