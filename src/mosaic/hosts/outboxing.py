"""The outbox across machines (docs/hosts.md, "Outbox"): each machine's outbox holds its own
agents' messages and its own watcher delivers them; the controller only routes.

- Queueing stores each message on its agent's machine: this one's database, or the host's
  own `send --queue --json ... -` with the text on ssh's stdin (never on a command line).
- Listing asks every machine at once (`outbox --json` there) and merges the rows, oldest
  first, each carrying `host`.
- `cancel`/`retry` send each id to the machine it names.

A message id is unique per machine, so across machines it is namespaced: `h1:17` is message
17 of host h1; this machine's ids stay plain numbers (`17`, also accepted as `local:17`).
In JSON a remote id is that string and a local one the number, so a script can pass any
`id` it was given back to `outbox cancel|retry` unchanged.

Pure parts (ids, merging) first; the functions that reach machines after them are the
library entry points the CLI and the web dashboard call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mosaic.config.names import LOCAL_HOST
from mosaic.config.paths import Paths
from mosaic.config.roster import Roster
from mosaic.errors import ExitCode, MosaicError, UsageError
from mosaic.hosts import hostroster, route
from mosaic.hosts.remote import QUICK_S, HostError, Remote, outbox_listing, parse_json
from mosaic.hosts.ssh import Reply
from mosaic.store.outbox import REFUSED_PREFIX

ACTIONS = ("cancel", "retry")

# --- ids (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """One message of one machine."""

    host: str  # LOCAL_HOST or a roster host's name
    id: int

    def __str__(self) -> str:
        return str(self.id) if self.host == LOCAL_HOST else f"{self.host}:{self.id}"

    @property
    def value(self) -> int | str:
        """The id as JSON shows it: this machine's a number, a host's `HOST:ID`."""
        return self.id if self.host == LOCAL_HOST else str(self)


def parse_ref(text: str, machines: Sequence[str]) -> Ref:
    """`17` (this machine), `local:17` or `HOST:17`; anything else is a usage error."""
    host, colon, number = text.rpartition(":")
    if not colon:
        host, number = LOCAL_HOST, text
    if not number.isdigit() or not number.isascii():
        raise UsageError(
            f"not a message id: {text!r} (ids are whole numbers, HOST:N for a host's messages)"
        )
    if host not in machines:
        raise UsageError(
            f"message id {text!r}: unknown host {host!r}; known: {', '.join(machines)}"
        )
    return Ref(host, int(number))


def parse_refs(words: Sequence[str], machines: Sequence[str], action: str) -> list[Ref]:
    if not words:
        raise UsageError(f"give the id of each message to {action}")
    return list(dict.fromkeys(parse_ref(w, machines) for w in words))


def machines(roster: Roster) -> list[str]:
    """Every machine of the fleet, in the order merged output lists them."""
    return [LOCAL_HOST, *(h.name for h in roster.hosts)]


def tagged(host: str, row: dict[str, Any]) -> dict[str, Any]:
    """A machine's own JSON row of a message as the controller shows it: its id namespaced,
    `host` after it."""
    ident = row.get("id")
    if not isinstance(ident, int) or isinstance(ident, bool):
        raise HostError(host, f"host {host}: an outbox row without a numeric id: {row!r}"[:300])
    rest = {k: v for k, v in row.items() if k not in ("id", "host")}
    return {"id": Ref(host, ident).value, "host": host, **rest}


def ordered(rows: Iterable[dict[str, Any]], order: Sequence[str]) -> list[dict[str, Any]]:
    """Several machines' rows as one list, oldest first: by `queued_at` (ISO 8601 UTC, so
    text order is time order), then the machines' order, then the machine's own id."""
    rank = {name: i for i, name in enumerate(order)}

    def key(row: dict[str, Any]) -> tuple[str, int, int]:
        ident = row["id"]
        number = ident if isinstance(ident, int) else int(str(ident).rpartition(":")[2])
        return str(row.get("queued_at") or ""), rank.get(row["host"], len(rank)), number

    return sorted(rows, key=key)


_REFUSED = re.compile(re.escape(REFUSED_PREFIX) + r"(\d+)( .*)")


def refusals(host: str, err: str) -> dict[str, str]:
    """A host's `outbox cancel|retry` stderr (one line per message it left as it was) as
    namespaced id -> the line, naming the message by its namespaced id."""
    found: dict[str, str] = {}
    for line in err.splitlines():
        match = _REFUSED.fullmatch(line.strip())
        if match is None:
            if line.strip():
                found[f"{host}:?{len(found)}"] = f"host {host}: {line.strip()}"
            continue
        ref = str(Ref(host, int(match.group(1))))
        found[ref] = f"{REFUSED_PREFIX}{ref}{match.group(2)}"
    return found


# --- reaching the machines ---------------------------------------------------------------------


@dataclass(frozen=True)
class Gathered:
    """What the machines answered: message rows (each with `host` and a namespaced `id`),
    the messages an action left as they were (namespaced id -> why), and the machines that
    could not do their part."""

    rows: list[dict[str, Any]]
    refused: dict[str, str] = field(default_factory=dict)
    errors: list[MosaicError] = field(default_factory=list)

    def exit_code(self, base: int = ExitCode.OK) -> int:
        """`base` (a wait's verdict), worsened by refusals (1) and failed machines."""
        codes = [base, *([ExitCode.FAILED] if self.refused else [])]
        return route.worst([*codes, *(int(e.exit_code) for e in self.errors)])


def enqueue(
    paths: Paths,
    roster: Roster,
    names: Sequence[str],
    text: str,
    ttl: int | None = None,
    max_attempts: int | None = None,
    wait: float | None = None,
) -> Gathered:
    """Store `text` for each agent (names checked against `roster`) on the agent's machine;
    with `wait` (seconds) also wait there until each is settled or the time is up. Rows in
    the order of `names`; a machine that fails leaves its agents out, with its error."""
    from mosaic import outbox

    attempts = outbox.DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts
    outbox.check(names, text, ttl, attempts)
    chosen = [roster.agent(name) for name in dict.fromkeys(names)]

    def local(part: route.Part) -> list[dict[str, Any]]:
        ids = outbox.enqueue(paths, part.names, text, ttl, attempts)
        found = outbox.get(paths, ids) if wait is None else outbox.wait(paths, ids, wait)
        return [tagged(LOCAL_HOST, m.as_json()) for m in found]

    def remote(host: Remote, part: route.Part) -> list[dict[str, Any]]:
        args = ["send", "--queue", "--json", "--max-attempts", str(attempts)]
        args += [] if ttl is None else ["--ttl", str(ttl)]
        args += [] if wait is None else ["--wait", "--timeout", repr(wait)]
        args += [*part.names, "-"]
        budget = QUICK_S + (wait or 0.0)
        try:
            doc, _ = _answer(host, args, text.encode(), budget, (0, 1, 3))
        except HostError as exc:
            if exc.exit_code != ExitCode.USAGE or not exc.reachable:
                raise
            # Its roster does not have the agent yet (never started there, or added since):
            # the host refused the message, so nothing is stored; give it its part of the
            # roster, as `start` would, and ask once more.
            host.push_roster(hostroster.part_for(paths, part.name))
            doc, _ = _answer(host, args, text.encode(), budget, (0, 1, 3))
        return rows_of(host.name, doc)

    done = route.each(paths, route.split(roster, chosen), local, remote)
    by_agent = {row["agent"]: row for d in done for row in d.value or []}
    rows = [by_agent[a.name] for a in chosen if a.name in by_agent]
    return Gathered(rows, errors=[d.error for d in done if d.error is not None])


def listing(
    paths: Paths, roster: Roster, agent: str | None = None, everything: bool = False
) -> Gathered:
    """Every machine's messages (AGENT's machine only, with AGENT), merged oldest first;
    not yet delivered ones, or `everything`. The host filters nothing by agent: its roster
    may not have the agent (yet, or any more) while its outbox still does."""
    from mosaic import outbox

    if agent is not None:
        parts = [route.part_of(roster, roster.agent(agent))]
    else:
        hosts = route.split(roster, roster.agents, every_host=True)
        parts = [route.Part(None, tuple(roster.local_agents))]
        parts += [p for p in hosts if p.host is not None]

    def local(part: route.Part) -> list[dict[str, Any]]:
        found = outbox.messages(paths, agent, everything) if paths.db.exists() else []
        return [tagged(LOCAL_HOST, m.as_json()) for m in found]

    def remote(host: Remote, part: route.Part) -> list[dict[str, Any]]:
        doc, _ = host.json(outbox_listing(everything))
        rows = rows_of(host.name, doc)
        return [r for r in rows if agent is None or r.get("agent") == agent]

    done = route.each(paths, parts, local, remote)
    rows = ordered((row for d in done for row in d.value or []), machines(roster))
    return Gathered(rows, errors=[d.error for d in done if d.error is not None])


def act(paths: Paths, roster: Roster, action: str, refs: Sequence[Ref]) -> Gathered:
    """`cancel` or `retry` each message on its machine. Each machine checks its own ids:
    an unknown one changes nothing on that machine (its exit 2), the others still act."""
    from mosaic import outbox

    if action not in ACTIONS:
        raise UsageError(f"unknown outbox action {action!r}")
    wanted: dict[str, list[int]] = {}
    for ref in refs:
        wanted.setdefault(ref.host, []).append(ref.id)
    parts = [
        route.Part(None if name == LOCAL_HOST else roster.host(name), ())
        for name in machines(roster)
        if name in wanted
    ]
    refused: dict[str, str] = {}

    def local(part: route.Part) -> list[dict[str, Any]]:
        ids = wanted[LOCAL_HOST]
        changes = (outbox.cancel if action == "cancel" else outbox.retry)(paths, ids)
        refused.update({str(c.id): c.error for c in changes if c.error is not None})
        return [tagged(LOCAL_HOST, m.as_json()) for m in outbox.get(paths, ids)]

    def remote(host: Remote, part: route.Part) -> list[dict[str, Any]]:
        ids = [str(i) for i in wanted[host.name]]
        doc, reply = _answer(host, ["outbox", action, *ids, "--json"], None, QUICK_S, (0, 1))
        refused.update(refusals(host.name, reply.err_text))
        return rows_of(host.name, doc)

    done = route.each(paths, parts, local, remote)
    given = {str(ref): i for i, ref in enumerate(refs)}

    def place(ident: object) -> int:
        return given.get(str(ident), len(given))

    rows = sorted((row for d in done for row in d.value or []), key=lambda r: place(r["id"]))
    refused = dict(sorted(refused.items(), key=lambda item: place(item[0])))
    return Gathered(rows, refused, [d.error for d in done if d.error is not None])


def _answer(
    host: Remote, args: list[str], input: bytes | None, timeout: float, ok: tuple[int, ...]
) -> tuple[Any, Reply]:
    """A `--json` answer of a command whose non-zero exits in `ok` still print a document
    (a wait that timed out, a refusal); such an exit without one is the host's error."""
    reply = host.call(args, input, timeout, ok)
    if reply.code != 0 and not reply.out.strip():
        raise host.failure(reply.code, reply.err_text)
    return parse_json(host.name, reply.out), reply


def rows_of(host: str, doc: Any) -> list[dict[str, Any]]:
    """A host's `{"messages": [...]}` as the controller's rows."""
    items = doc.get("messages") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise HostError(host, f"host {host}: expected {{\"messages\": [...]}} from its outbox")
    return [tagged(host, item) for item in items if isinstance(item, dict)]

