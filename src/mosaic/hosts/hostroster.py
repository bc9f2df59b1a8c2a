"""A host's part of the roster: cut here, written there (docs/hosts.md).

The controller sends each host the roster as the user wrote it, minus `hosts:` and minus
other machines' agents, with each agent's `host:` dropped: everything else (`defaults`,
`runtimes`, workdirs with `~` and `$VARS`) is the host's to interpret, in its own
environment. The text travels on ssh's stdin to the hidden `roster-put` command there,
which validates it as the host's roster and replaces `<home>/fleet/roster.yaml` atomically
under the roster's edit lock: no shell ever sees roster content.

A roster that mosaic did not write is never replaced (it may be a hand-kept roster, or the
controller's own when a host entry points back at it): the first line marks ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mosaic.config.paths import Paths
from mosaic.errors import ConfigError

if TYPE_CHECKING:
    from mosaic.config.roster import Roster

MARKER = "# mosaic fleet: this host's part of a controller's roster"
HEADER = (
    f"{MARKER}.\n"
    "# Written by `mosaic fleet start/restart/apply` on the controller; edits here are\n"
    "# replaced next time. Edit the controller's roster instead.\n"
)
MAX_BYTES = 4 * 1024 * 1024


def part_text(roster_text: str, host: str) -> bytes:
    """The roster for `host`, from the controller's roster text (already validated)."""
    from mosaic.config import yamlio

    doc = _plain(yamlio.load(roster_text))
    out: dict[str, Any] = {k: v for k, v in doc.items() if k not in ("hosts", "agents")}
    agents = [
        {k: v for k, v in item.items() if k != "host"}
        for item in doc.get("agents") or []
        if isinstance(item, dict) and item.get("host") == host
    ]
    out["agents"] = agents
    if isinstance(doc.get("notify"), list):
        out["notify"] = _notify_part(doc["notify"], {a.get("name") for a in agents})
        if not out["notify"]:
            del out["notify"]
    return (HEADER + yamlio.dump(out)).encode()


def part_for(paths: Paths, host: str) -> bytes:
    """`host`'s part of the controller's roster as it is on disk now: what starts or is
    queued there is what the roster says now."""
    from mosaic.config.load import decode, read

    return part_text(decode(read(paths.roster), paths.roster), host)


def _notify_part(targets: list[Any], here: set[Any]) -> list[Any]:
    """The `notify:` targets of a host's watcher: those for every agent as written, those
    limited to `agents:` only with this host's among them (a host's roster must not name
    agents it does not have, and an emptied list would mean every agent)."""
    kept = []
    for target in targets:
        if isinstance(target, dict) and isinstance(target.get("agents"), list):
            mine = [name for name in target["agents"] if name in here]
            if not mine:
                continue
            target = {**target, "agents": mine}
        kept.append(target)
    return kept


def _plain(node: Any) -> Any:
    """Round-trip containers and scalars as plain Python values (dict order kept)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def receive(paths: Paths, data: bytes) -> None:
    """On the host: validate and install the roster the controller sent."""
    from mosaic.base.flock import exclusive
    from mosaic.base.fs import atomic_write, remove_stale_temps

    proposed(paths, data)  # every problem, as FILE:LINE:COL of the file to be
    with exclusive(paths.roster_lock):
        _refuse_foreign(paths)
        remove_stale_temps(paths.roster)
        atomic_write(paths.roster, data)


def proposed(paths: Paths, data: bytes) -> Roster:
    """On the host: the roster the controller sent, validated as the file it would replace
    (relative workdirs and positions as there), without writing anything: what `apply
    --dry-run` plans against. Refused as `receive` would refuse it."""
    from mosaic.config.load import loads

    if len(data) > MAX_BYTES or not data.startswith(MARKER.encode()):
        raise ConfigError("roster-put takes only a roster a mosaic controller cut for this host")
    roster = loads(data, paths.roster)
    _refuse_foreign(paths)
    return roster


def _refuse_foreign(paths: Paths) -> None:
    try:
        with paths.roster.open("rb") as current:
            first = current.readline()
    except FileNotFoundError:
        return
    if not first.startswith(MARKER.encode()):
        raise ConfigError(
            f"{paths.roster} exists and was not written by a mosaic controller; "
            "move it away (or give this host another `home:` in the controller's "
            "roster) so that it is not overwritten"
        )
