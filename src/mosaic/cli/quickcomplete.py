"""Shell completion of agent, runtime and host names, answered without click when it can be.

The shells call `mosaic` with `_MOSAIC_COMPLETE=bash_complete|zsh_complete|fish_complete`
and the words typed so far (click's protocol; the scripts come from click,
`_MOSAIC_COMPLETE=bash_source mosaic`). click alone costs more than two bare interpreter
start-ups, a TAB should cost about as much as `mosaic --version`, so the common questions —
which agent after `start`, `send`, `logs` …, which runtime after `add … --runtime`, which
machine after `events --host` — are
answered here from the names cache that every load of the roster keeps
(`rostercache.put_names`), in exactly the text click would print. Anything else (command
and option names, quoted words, `=` forms, a roster not loaded since it changed) returns
None and click answers. tests/test_completion.py checks, for every command, that both give
the same answer. Imports stay within `os`, `sys`, `marshal`.
"""

from __future__ import annotations

import os
import sys

from mosaic.cli import COMPLETE_VAR
from mosaic.cli.argv import split_group
from mosaic.config import locate, rostercache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# What a command's positional arguments complete to: "agent" for its first one only,
# "agents" for every one (`send AGENT... MESSAGE`, which click cannot tell apart).
POSITIONALS = {
    "start": "agent", "stop": "agent", "restart": "agent", "status": "agent",
    "capture": "agent", "watch": "agent", "attach": "agent", "logs": "agent",
    "remove": "agent", "send": "agents", "events": "agent", "approve": "agent",
    "outbox": "agent",
}  # fmt: skip
# What the value of an option completes to.
OPTION_VALUES = {("add", "--runtime"): "runtimes", ("events", "--host"): "hosts"}


def names(flags: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, list[Any]] | None:
    """The names of the roster these flags and this environment point at, if the roster's
    current bytes were loaded (and so cached) before."""
    home, roster = locate.home_and_roster(
        flags.get("--mosaic-home"), flags.get("--roster"), environ
    )
    try:
        with open(roster, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return rostercache.get_names(locate.run_dir(home), data)


def candidates(
    kind: str, found: Mapping[str, list[Any]], incomplete: str
) -> list[tuple[str, str | None]]:
    """(value, help) pairs of `kind` starting with `incomplete`; one rule for both paths."""
    if kind == "agents":
        return [(n, rt) for n, rt in found.get("agents", []) if n.startswith(incomplete)]
    return [(n, None) for n in found.get(kind, []) if n.startswith(incomplete)]


def kind_at(words: list[str], incomplete: str) -> tuple[dict[str, str], str] | None:
    """(group flags, what the word being typed completes to), or None when click must
    decide: the rules are click's (an option's value after the option; otherwise the first
    argument still wanting a value), restricted to command lines without options in them."""
    if incomplete.startswith("-") or "=" in incomplete:
        return None
    split = split_group(words)
    if split is None or not split[1]:
        return None
    flags, (command, *rest) = split
    if "--" in rest or any("=" in w for w in rest):
        return None
    if rest and rest[-1].startswith("-"):
        kind = OPTION_VALUES.get((command, rest[-1]))
        return None if kind is None else (flags, kind)
    if any(w.startswith("-") for w in rest):
        return None
    positional = POSITIONALS.get(command)
    if positional == "agents" or (positional == "agent" and not rest):
        return flags, "agents"
    return None


def _words(shell: str, environ: Mapping[str, str]) -> tuple[list[str], str] | None:
    """click's `get_completion_args` for plain words; None when a word is quoted or
    escaped (click's shlex split decides those)."""
    line, cword = environ.get("COMP_WORDS", ""), environ.get("COMP_CWORD", "")
    if any(c in line or c in cword for c in "'\"\\"):
        return None
    words = _split(line)
    if shell == "fish":
        incomplete = (_split(cword) or [""])[0]
        args = words[1:]
        if incomplete and args and args[-1] == incomplete:
            args.pop()
        return args, incomplete
    try:
        index = int(cword)
    except ValueError:
        return None
    return words[1:index], words[index] if index < len(words) else ""


def _split(text: str) -> list[str]:
    """shlex's split (posix, whitespace_split) of a text without quotes or escapes."""
    for blank in "\t\r\n":
        text = text.replace(blank, " ")
    return [w for w in text.split(" ") if w]


def _format(shell: str, value: str, help: str | None) -> str:
    """click's `format_completion` of each shell for a plain item."""
    if shell == "bash":
        return f"plain,{value}"
    if shell == "zsh":
        if not help:
            return f"plain\n{value}\n_"
        return "plain\n" + value.replace(":", "\\:") + "\n" + help
    if help:
        return f"plain,{value}\t" + help.replace("\n", "\\n").replace("\t", " ")
    return f"plain,{value}"


def answer(environ: Mapping[str, str]) -> str | None:
    """The completion text click would print, or None to let click answer."""
    shell, _, instruction = environ.get(COMPLETE_VAR, "").partition("_")
    if instruction != "complete" or shell not in ("bash", "zsh", "fish"):
        return None
    parsed = _words(shell, environ)
    if parsed is None:
        return None
    found_kind = kind_at(*parsed)
    if found_kind is None:
        return None
    flags, kind = found_kind
    found = names(flags, environ)
    if found is None:
        return None
    items = candidates(kind, found, parsed[1])
    return "\n".join(_format(shell, value, help) for value, help in items) + "\n"


def run() -> int | None:
    text = answer(os.environ)
    if text is None:
        return None
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
