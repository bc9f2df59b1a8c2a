"""Is a runtime's program installed, on the PATH the agent itself would run with?

Whether a program is installed is not something a cache can key on, so `validate` answers
it afresh on every run, including its fast path; this module is therefore kept to `os`
alone (no shutil) and is what `roster.missing_programs` and `start` use too.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# One agent's need: (program, runtime name, agent name, the agent's own PATH or None).
Use = tuple[str, str, str, "str | None"]
# A program nobody can run: (program, runtime name, the agents that need it).
Missing = tuple[str, str, tuple[str, ...]]


def search_path(own: str | None, environ: Mapping[str, str]) -> str:
    """The PATH an agent runs with: its own env's when set (and not empty), else ours."""
    return own or environ.get("PATH", os.defpath)


def find(program: str, search: str) -> str | None:
    """shutil.which's answer: a name with a slash is checked as is, a bare name in each
    directory of `search`; an empty `search` finds nothing."""
    if os.path.dirname(program):
        return program if _runnable(program) else None
    if not search:
        return None
    seen = set()
    for directory in search.split(os.pathsep):
        if directory in seen:
            continue
        seen.add(directory)
        candidate = os.path.join(directory, program)
        if _runnable(candidate):
            return candidate
    return None


def _runnable(path: str) -> bool:
    return os.access(path, os.X_OK) and not os.path.isdir(path)


def missing(uses: Iterable[Use], environ: Mapping[str, str]) -> list[Missing]:
    """Programs not found, grouped per (program, runtime) in the roster's order."""
    found: dict[tuple[str, str], list[str]] = {}
    for program, runtime, agent, own_path in uses:
        if find(program, search_path(own_path, environ)) is None:
            found.setdefault((program, runtime), []).append(agent)
    return [(program, runtime, tuple(agents)) for (program, runtime), agents in found.items()]


def describe(item: Missing) -> str:
    program, runtime, agents = item
    return (
        f"program {program!r} (runtime {runtime}) not found on PATH; "
        f"used by {', '.join(agents)}"
    )
