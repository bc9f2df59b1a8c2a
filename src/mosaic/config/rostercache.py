"""Two caches keyed by a roster's exact bytes, so an unchanged roster skips the YAML parser
and `validate` skips even the validator.

ruamel.yaml's import and pure-Python parse cost far more than the rest of a command, and a
50-agent `validate` through click, ruamel and the validator costs several interpreter
start-ups. So:

- the *doc* cache keeps the parsed document of a roster that was valid; every load still
  validates it against the current environment;
- the *outcome* cache keeps what `validate` found for a valid roster: its agent count and
  each agent's program, tied to the values of every environment variable the validator
  looked at. Whether the programs are installed is checked afresh on each run.

Each entry carries the whole source it came from (compared whole: no hash to collide), the
mosaic version, the interpreter and the stat of the validator's own modules, so an edited
roster, another Python or a changed validator can only miss. Files are written atomically by
whoever validated, so concurrent writers can only ever store a correct entry for some
version of the roster. The format is `marshal`, which is built into the interpreter: this
module is imported by `validate`'s fast path and must cost next to nothing.
"""

from __future__ import annotations

import marshal
import os
import sys

from mosaic import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from mosaic.config.programs import Use
    from mosaic.config.roster import Roster

DOC_FILE = "roster-cache"
OUTCOME_FILE = "validate-cache"
NAMES_FILE = "names-cache"
FORMAT = 3
# The modules whose code decides a roster's outcome (this package's), and the YAML parser
# that read it: editing or upgrading any of them invalidates every entry.
_VALIDATOR = (
    "checker.py", "eventtypes.py", "load.py", "names.py", "programs.py", "roster.py",
    "rostercache.py", "runtimes.py", "yamlguard.py", "yamlio.py",
)  # fmt: skip
_PARSER = os.path.join("ruamel", "yaml", "__init__.py")  # holds ruamel's version


def _parser_file() -> str | None:
    """ruamel.yaml's `__init__.py`, found the way `import` would, without importing it."""
    for entry in sys.path:
        candidate = os.path.join(entry or ".", _PARSER)
        if os.path.isfile(candidate):
            return candidate
    return None


def _stamp() -> tuple[Any, ...] | None:
    """What the entries depend on besides the roster; None (cache nothing) when the
    validator's or the parser's sources cannot be seen (a zipped or frozen install)."""
    here = os.path.dirname(__file__)
    parser = _parser_file()
    if parser is None:
        return None
    stats = []
    try:
        for path in (*(os.path.join(here, name) for name in _VALIDATOR), parser):
            st = os.stat(path)
            stats.append((path, st.st_mtime_ns, st.st_size))
    except OSError:
        return None
    # The interpreter itself, however it was named (a venv has python and python3).
    interpreter = os.path.realpath(sys.executable)
    return (FORMAT, __version__, interpreter, sys.hexversion, tuple(stats))


def _read(cache_dir: str, name: str, data: bytes) -> dict[str, Any] | None:
    """The entry in `name` if it was written for exactly these bytes by this code."""
    try:
        with open(os.path.join(cache_dir, name), "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return None  # only ever trust what we wrote (0600, in a 0700 dir)
            # marshal builds values and never runs code; the file is ours, checked above.
            entry = marshal.loads(f.read())  # noqa: S302
    except (OSError, ValueError, EOFError, TypeError):
        return None
    stamp = _stamp()
    if (
        stamp is None
        or not isinstance(entry, dict)
        or entry.get("source") != data
        or entry.get("stamp") != stamp
    ):
        return None
    return entry


def _write(cache_dir: str, name: str, data: bytes, fields: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written only costs speed."""
    import contextlib
    from pathlib import Path

    from mosaic.base.fs import atomic_write

    stamp = _stamp()
    if stamp is None:
        return
    entry = {"stamp": stamp, "source": data, **fields}
    with contextlib.suppress(OSError, ValueError):
        atomic_write(Path(cache_dir) / name, marshal.dumps(entry))


# --------------------------------------------------------------------------- doc


def get_doc(cache_dir: str, data: bytes) -> Any:
    """The cached plain document for exactly these bytes, or None."""
    entry = _read(cache_dir, DOC_FILE, data)
    return None if entry is None else entry.get("doc")


def put_doc(cache_dir: str, data: bytes, doc: Any) -> None:
    try:
        fields = {"doc": plain(doc)}
    except ValueError:
        return  # holds something marshal would change; just not cached
    _write(cache_dir, DOC_FILE, data, fields)


def plain(doc: Any) -> Any:
    """The document as built-in types, or raise ValueError when it holds anything else
    (timestamps, non-string keys, custom scalar types) that a round trip would change."""
    if doc is None or type(doc) in (str, bool):
        return doc
    if isinstance(doc, int) and not isinstance(doc, bool):
        if type(doc) is not int and type(doc).__name__ != "ScalarInt":
            raise ValueError(f"unsupported int type {type(doc).__name__}")
        return int(doc)
    if isinstance(doc, str):
        return str(doc)
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if not isinstance(key, str):
                raise ValueError("non-string key")
            out[str(key)] = plain(value)
        return out
    if isinstance(doc, list):
        return [plain(v) for v in doc]
    raise ValueError(f"unsupported type {type(doc).__name__}")


# --------------------------------------------------------------------------- outcome


def get_outcome(
    cache_dir: str, roster: str, data: bytes, environ: Mapping[str, str]
) -> tuple[int, list[Use]] | None:
    """(agent count, each agent's program need) that `validate` found for exactly these
    bytes at this path, if every environment variable it read still has the same value."""
    entry = _read(cache_dir, OUTCOME_FILE, data)
    if entry is None or entry.get("roster") != roster:
        return None
    env, agents, uses = entry.get("env"), entry.get("agents"), entry.get("uses")
    if not isinstance(env, dict) or not isinstance(agents, int) or not isinstance(uses, list):
        return None
    for name, value in env.items():
        if environ.get(name) != value:
            return None
    return agents, uses


def put_outcome(
    cache_dir: str,
    roster: str,
    data: bytes,
    env_reads: Mapping[str, str | None],
    agents: int,
    uses: list[Use],
) -> None:
    fields = {"roster": roster, "env": dict(env_reads), "agents": agents, "uses": list(uses)}
    _write(cache_dir, OUTCOME_FILE, data, fields)


# --------------------------------------------------------------------------- names


def names_of(roster: Roster) -> dict[str, list[Any]]:
    """What shell completion offers for a roster: agents of every machine (with their
    runtime, shown as help), runtime names, machine names (`local`, then the roster's hosts:
    the names `status` and `events` give them)."""
    from mosaic.config.names import LOCAL_HOST

    return {
        "agents": [[a.name, a.runtime] for a in roster.agents],
        "runtimes": sorted(roster.runtimes),
        "hosts": [LOCAL_HOST, *(h.name for h in roster.hosts)],
    }


def get_names(cache_dir: str, data: bytes) -> dict[str, list[Any]] | None:
    """`names_of` the roster with exactly these bytes, as last loaded, or None."""
    entry = _read(cache_dir, NAMES_FILE, data)
    names = None if entry is None else entry.get("names")
    return names if isinstance(names, dict) else None


def put_names(cache_dir: str, data: bytes, roster: Roster) -> None:
    """Kept by every load of a valid roster (written only when it changed), so a TAB
    answers from it without the YAML parser or the validator (`cli.quickcomplete`)."""
    names = names_of(roster)
    if get_names(cache_dir, data) != names:
        _write(cache_dir, NAMES_FILE, data, {"names": names})
