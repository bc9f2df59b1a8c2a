"""`apply` across machines (docs/hosts.md, "Apply"): each machine applies its own part.

Every declared host (also one whose agents have all left the roster: what runs there may
have to stop) gets its part of the roster on ssh's stdin with its own `apply --json`, which
installs it as `roster-put` does and applies it under that machine's restart lock; a dry run
sends it the same way and the host plans against it without writing anything. This machine
applies the roster's local agents, as without hosts. The machines run at once; one that
cannot be reached (or fails) is reported and changes nothing of the others'.

An agent moved to another host (`host:` changed) is stopped on the old machine, whose part
no longer has it, and started on the new one: the merged plan says "moved to"/"moved from".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mosaic.config.names import LOCAL_HOST
from mosaic.config.paths import Paths
from mosaic.config.roster import Roster
from mosaic.errors import ExitCode
from mosaic.hosts import hostroster, route
from mosaic.hosts.remote import LIFECYCLE_S, HostError, Remote

Doc = dict[str, Any]
UNKNOWN = "unknown"  # the action of an agent whose machine could not plan


def apply(
    paths: Paths, roster: Roster, roster_text: str, dry_run: bool
) -> tuple[Doc, int, list[str]]:
    """(the merged document, the exit code: the worst of every machine's, the failures to
    name on stderr)."""
    parts = route.split(roster, roster.agents, every_host=True)
    if parts[0].host is not None and paths.db.exists():
        # No local agent, but this machine ran some: those that left are stopped here.
        parts.insert(0, route.Part(None, ()))

    def local(part: route.Part) -> Doc:
        from mosaic.apply import execute
        from mosaic.fleet import open_fleet

        mine = replace(roster, agents=tuple(roster.local_agents))
        # Only a machine with agents of its own decides (and records) its supervisor.
        fleet = open_fleet(paths, deciding=not dry_run and bool(mine.agents), roster=mine)
        if dry_run:
            report = execute.Report(execute.prepare(fleet).plan, {})
        else:
            report = execute.apply(fleet)
        return report.to_doc(dry_run, str(fleet.supervisor))

    def remote(host: Remote, part: route.Part) -> Doc:
        args = ["apply", "--json", "--controller-roster", *(["--dry-run"] if dry_run else [])]
        text = hostroster.part_text(roster_text, part.name)
        doc, _ = host.json(args, input=text, timeout=LIFECYCLE_S, ok=(0, 1))
        if not isinstance(doc, dict) or not isinstance(doc.get("agents"), list):
            raise HostError(host.name, f"host {host.name}: apply gave no plan")
        return doc

    done = route.each(paths, parts, local, remote)
    results = [_result(d) for d in done]
    doc = merge(roster, results, dry_run)
    codes = [int(d.error.exit_code) if d.error is not None else 0 for d in done]
    codes += [int(ExitCode.FAILED) for r in results if r.doc is not None and not r.doc.get("ok")]
    return doc, route.worst(codes), [d.error.message for d in done if d.error is not None]


@dataclass(frozen=True)
class Result:
    """One machine's answer: its own apply document, or why there is none."""

    host: str
    doc: Doc | None
    reason: str | None = None
    reachable: bool = True


def _result(d: route.Done[Doc]) -> Result:
    if d.error is None:
        return Result(d.part.name, d.value)
    if isinstance(d.error, HostError):
        return Result(d.part.name, None, d.error.reason, d.error.reachable)
    return Result(d.part.name, None, d.error.message)


def merge(roster: Roster, results: Sequence[Result], dry_run: bool) -> Doc:
    """One `apply --json` document from every machine's (pure). Every step and unit carries
    `host`; `hosts` has one entry per machine; the agents of a machine that could not plan
    are listed with action `unknown` and the reason."""
    rows: list[Doc] = []
    units: list[Doc] = []
    hosts: list[Doc] = []
    for r in results:
        entry: Doc = {"name": r.host, "reachable": True, "ok": False, "error": None,
                      "supervisor": None, "changes": None, "units_error": None}  # fmt: skip
        if r.doc is None:
            reason = r.reason or "no answer"
            entry.update(reachable=r.reachable, error=reason)
            rows += [
                {"name": a.name, "host": r.host, "action": UNKNOWN, "reasons": [reason],
                 "result": None if dry_run else "failed", "error": reason, "done": []}
                for a in roster.agents if (a.host or LOCAL_HOST) == r.host
            ]  # fmt: skip
        else:
            doc = r.doc
            entry.update({"ok": bool(doc.get("ok")), **{
                k: doc.get(k) for k in ("supervisor", "changes", "units_error")
            }})  # fmt: skip
            rows += [{"name": row.get("name"), "host": r.host, **row} for row in doc["agents"]]
            units += [{**unit, "host": r.host} for unit in doc.get("units") or []]
        hosts.append(entry)
    _moves(rows, {a.name: a.host or LOCAL_HOST for a in roster.agents})
    local = next((h for h in hosts if h["name"] == LOCAL_HOST), None)
    return {
        "dry_run": dry_run,
        "supervisor": local["supervisor"] if local else None,
        "agents": rows,
        "units": units,
        "changes": sum(h["changes"] or 0 for h in hosts),
        "units_error": local["units_error"] if local else None,
        "ok": all(h["ok"] for h in hosts),
        "hosts": hosts,
    }


def _moves(rows: list[Doc], placed: Mapping[str, str]) -> None:
    """Say so where an agent left one machine for another: a stop where it no longer is
    placed, a start where it now is."""
    stopped = {}
    for row in rows:
        where = placed.get(row["name"])
        if row["action"] == "stop" and where is not None and where != row["host"]:
            row["reasons"] = [f"moved to {where}"]
            stopped[row["name"]] = row["host"]
    for row in rows:
        if row["action"] == "start" and row["name"] in stopped:
            row["reasons"] = [*row["reasons"], f"moved from {stopped[row['name']]}"]
