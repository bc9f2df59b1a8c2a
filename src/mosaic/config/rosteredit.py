"""Edits of roster.yaml (`init`, `add`, `remove`) that a user can trust with a hand-kept file.

Every edit is read-modify-write under the roster's flock, so concurrent `add`s never lose
each other's agent; the result is validated before anything is written (a bad edit writes
nothing) and replaced atomically. Edits go through ruamel's round-trip containers, so the
user's comments, key order and quoting elsewhere in the file survive.

ruamel attaches a comment to the value *before* it, so "the comment above agent B" lives on
the last value of agent A. `_Comments` moves those comments when an agent is added or removed,
so they stay above the agent they describe.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic.base.flock import exclusive
from mosaic.base.fs import atomic_write, remove_stale_temps
from mosaic.config import presets, yamlio
from mosaic.config.checker import closest
from mosaic.config.load import decode, loads, parse
from mosaic.config.names import ENV_KEY_PATTERN, NAME_PATTERN
from mosaic.config.paths import Paths
from mosaic.config.roster import Roster
from mosaic.errors import ConfigError, RosterError, UnknownAgentError, UsageError


def init(paths: Paths, preset: str = presets.DEFAULT_PRESET, force: bool = False) -> Path:
    """Write a preset roster; an existing roster is only replaced with `force`."""
    text = presets.render(preset)
    loads(text, paths.roster)
    with exclusive(paths.roster_lock):
        if paths.roster.exists() and not force:
            raise UsageError(
                f"roster already exists: {paths.roster}; "
                "use --force to overwrite it (its current content will be lost)"
            )
        remove_stale_temps(paths.roster)
        atomic_write(paths.roster, text.encode())
    return paths.roster


def add(
    paths: Paths,
    name: str,
    runtime: str,
    workdir: str | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Roster:
    """Append one agent; returns the roster as written."""
    _check_name(name)
    for key in env or {}:
        if not re.fullmatch(ENV_KEY_PATTERN, key):
            raise UsageError(
                f"invalid environment variable name {key!r}: must match {ENV_KEY_PATTERN}"
            )

    def mutate(doc: Any, current: Roster) -> None:
        if name in current.names:
            raise UsageError(f"agent {name!r} already exists in {paths.roster}")
        if runtime not in current.runtimes:
            known = sorted(current.runtimes)
            match = closest(runtime, known)
            hint = f" (did you mean {match!r}?)" if match else ""
            raise UsageError(
                f"unknown runtime {runtime!r}{hint}; known runtimes: {', '.join(known)}"
            )
        _append_agent(doc, _agent_node(name, runtime, workdir, args, env or {}))

    return _edit(paths, mutate)


def remove(paths: Paths, name: str) -> Roster:
    """Drop one agent from the roster file (the caller stops it first if it runs)."""

    def mutate(doc: Any, current: Roster) -> None:
        agents = doc.get("agents") or []
        for index, item in enumerate(agents):
            if isinstance(item, dict) and item.get("name") == name:
                _remove_agent(doc, index)
                return
        raise UnknownAgentError(name, current.names)

    return _edit(paths, mutate)


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise UsageError(
            f"invalid agent name {name!r}: must match ^{NAME_PATTERN}$ "
            "(a lowercase letter, then lowercase letters, digits, '_' or '-'; at most 32)"
        )


def _edit(paths: Paths, mutate: Callable[[Any, Roster], None]) -> Roster:
    """Read, check, mutate, re-validate and atomically write, all under the roster lock."""
    path = paths.roster
    with exclusive(paths.roster_lock):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"no roster at {path}; create one first with `mosaic fleet init`"
            ) from None
        current = loads(data, path)
        text = decode(data, path)
        doc, _ = parse(text, path)
        mutate(doc, current)
        new_text = yamlio.dump(doc, yamlio.guess_style(text))
        try:
            result = loads(new_text, path)
        except RosterError as exc:
            raise ConfigError(
                "the edit would leave an invalid roster, nothing was written:\n" + exc.message
            ) from None
        remove_stale_temps(path)
        atomic_write(path, new_text.encode())
        return result


# --------------------------------------------------------------------------- nodes


def _agent_node(
    name: str, runtime: str, workdir: str | None, args: Sequence[str], env: Mapping[str, str]
) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    node = CommentedMap()
    node["name"] = name
    node["runtime"] = runtime
    if workdir:
        node["workdir"] = workdir
    if args:
        seq = CommentedSeq(args)
        seq.fa.set_flow_style()
        node["args"] = seq
    if env:
        mapping = CommentedMap(env)
        mapping.fa.set_flow_style()
        node["env"] = mapping
    return node


def _append_agent(doc: Any, node: Any) -> None:
    from ruamel.yaml.comments import CommentedSeq

    agents = doc.get("agents")
    if agents is None:
        agents = CommentedSeq()
        doc["agents"] = agents
    if not agents:
        # `agents: []` is flow style; a block list reads better once it has members. The
        # comment lines kept after `[]` now belong below the new (only) agent.
        agents.fa.set_block_style()
        eol, rest = _Comments.key_tail(doc, "agents")
        _Comments.set_key_tail(doc, "agents", eol, "")
        _Comments.set_tail(node, "", rest)
    else:
        # Comments after the last agent belong to whatever follows the list: keep them
        # below the new agent rather than between the old last agent and the new one.
        eol, rest = _Comments.tail(agents[-1])
        _Comments.set_tail(agents[-1], eol, "")
        _Comments.set_tail(node, "", rest)
    agents.append(node)


def _remove_agent(doc: Any, index: int) -> None:
    agents = doc["agents"]
    _, rest = _Comments.tail(agents[index])
    if index > 0:
        eol, _ = _Comments.tail(agents[index - 1])
        _Comments.set_tail(agents[index - 1], eol, rest)
    elif len(agents) > 1:
        _Comments.add_before_first(doc, agents, rest)
    else:
        _Comments.empty_agents(doc, rest)
        return
    del agents[index]


class _Comments:
    """The few comment moves an agent edit needs, over ruamel's comment attributes.

    A comment token after a value holds the rest of that line (an end-of-line comment, or
    nothing) and then the full-line comments below it, e.g. "# eol\\n  # next agent\\n"."""

    @staticmethod
    def _slot(node: Any) -> tuple[Any, Any, int] | None:
        """(ca.items, key, index) of the comment slot after the deepest last value."""
        while True:
            if isinstance(node, dict) and node:
                key: Any = list(node)[-1]
                index = 2
            elif isinstance(node, list) and node:
                key, index = len(node) - 1, 0
            else:
                return None
            child = node[key]
            if isinstance(child, dict | list) and child and not _is_flow(child):
                node = child
                continue
            return node.ca.items, key, index

    @classmethod
    def tail(cls, node: Any) -> tuple[str, str]:
        """(end-of-line comment, following comment lines) after `node`."""
        slot = cls._slot(node)
        if slot is None:
            return "", ""
        items, key, index = slot
        entry = items.get(key)
        token = entry[index] if entry and len(entry) > index else None
        if token is None or not isinstance(token.value, str):
            return "", ""
        eol, _, rest = token.value.partition("\n")
        return eol, rest

    @classmethod
    def set_tail(cls, node: Any, eol: str, rest: str) -> None:
        slot = cls._slot(node)
        if slot is None:
            return
        items, key, index = slot
        entry = items.setdefault(key, [None, None, None, None])
        while len(entry) <= index:
            entry.append(None)
        if not eol and not rest:
            entry[index] = None
            return
        token = entry[index]
        value = f"{eol}\n{rest}"
        if token is None:
            entry[index] = cls._token(value)
        else:
            token.value = value

    @staticmethod
    def key_tail(doc: Any, key: str) -> tuple[str, str]:
        entry = doc.ca.items.get(key)
        if not entry or len(entry) < 3 or entry[2] is None:
            return "", ""
        eol, _, rest = entry[2].value.partition("\n")
        return eol, rest

    @classmethod
    def set_key_tail(cls, doc: Any, key: str, eol: str, rest: str) -> None:
        entry = doc.ca.items.get(key)
        if entry is None:
            return
        entry[2] = cls._token(f"{eol}\n{rest}") if eol or rest else None

    @staticmethod
    def _token(value: str, column: int = 0) -> Any:
        from ruamel.yaml.error import CommentMark
        from ruamel.yaml.tokens import CommentToken

        return CommentToken(value, CommentMark(column), None)

    @classmethod
    def add_before_first(cls, doc: Any, seq: Any, rest: str) -> None:
        """Keep comment lines that were above the second item once it becomes the first.

        ruamel keeps the lines above the first item either in the token after `agents:`
        (when that line has an end-of-line comment) or as a list of line tokens."""
        if not rest:
            return
        entry = doc.ca.items.setdefault("agents", [None, None, None, None])
        if len(entry) > 3 and isinstance(entry[3], list):
            for line in rest.splitlines():
                text = line.lstrip(" ")
                entry[3].append(cls._token(text + "\n", len(line) - len(text)))
        elif entry[2] is not None:
            entry[2].value = entry[2].value + rest
        else:
            entry[2] = cls._token("\n" + rest)
            seq.ca.comment = [entry[2], None]

    @classmethod
    def empty_agents(cls, doc: Any, rest: str) -> None:
        """Replace the list by a fresh `[]`, keeping every comment line that was above or
        below its last item after it: a comment left between `agents:` and `[]` would
        break the YAML."""
        from ruamel.yaml.comments import CommentedSeq

        entry = doc.ca.items.get("agents") or [None, None, None, None]
        eol, lines = "", ""
        if entry[2] is not None:
            eol, _, lines = entry[2].value.partition("\n")
        if len(entry) > 3 and isinstance(entry[3], list):
            lines += "".join(" " * t.column + t.value for t in entry[3])
        # After a flow-style last value, ruamel keeps the following lines on the list.
        rest += "".join(" " * t.column + t.value for t in getattr(doc["agents"].ca, "end", []))
        empty = CommentedSeq()
        empty.fa.set_flow_style()
        doc["agents"] = empty
        text = lines + rest
        doc.ca.items["agents"] = [None, None, cls._token(f"{eol}\n{text}"), None]
        if not eol and not text:
            del doc.ca.items["agents"]


def _is_flow(node: Any) -> bool:
    fa = getattr(node, "fa", None)
    return bool(fa is not None and fa.flow_style())


def absolute_workdir(raw: str, cwd: str | None = None) -> str:
    """A workdir typed on the command line means relative to where the user stands; in the
    roster a relative path is relative to the roster, so store it absolute (unless it starts
    with ~ or $, which the roster expands itself)."""
    if raw.startswith(("~", "$", "/")):
        return raw
    return os.path.normpath(os.path.join(cwd or os.getcwd(), raw))
