"""Reading roster.yaml: bytes, YAML (with positions), then the checker.

Every problem is reported at once as FILE:LINE:COL (see `checker`). An unchanged roster
is answered from the parsed-document cache (`rostercache`) without importing the YAML
parser, which alone costs several interpreter start-ups.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from mosaic.config.checker import Checker, clip
from mosaic.config.roster import Roster
from mosaic.errors import ConfigError, Problem, RosterError

# `typing` costs a measurable share of `status`'s start-up; annotations only need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_YAML_CLIP = 200  # characters of a YAML parser's message

# --------------------------------------------------------------------------- loading


def read(path: Path) -> bytes:
    """The roster file's bytes, or a ConfigError saying what to do about it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"roster not found: {path}; create one with `mosaic fleet init`"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"roster path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read roster {path}: {exc.strerror or exc}") from None


def load(
    path: Path, env: Mapping[str, str] | None = None, cache_dir: Path | None = None
) -> Roster:
    """Read and validate the roster at `path`; every problem is in one RosterError."""
    return load_bytes(read(path), path, env, cache_dir)


def load_bytes(
    data: bytes, path: Path, env: Mapping[str, str] | None = None, cache_dir: Path | None = None
) -> Roster:
    """Validate `data` as the roster at `path`.

    With `cache_dir`, the parsed document of a roster that was valid last time is kept
    there, next to the exact bytes it came from, so an unchanged roster is checked without
    importing or running the YAML parser (which costs several interpreter start-ups).
    The check itself always runs; any problem re-parses with YAML for exact positions.
    """
    if cache_dir is None:
        return loads(data, path, env)
    from mosaic.config import rostercache

    doc = rostercache.get_doc(str(cache_dir), data)
    if doc is not None:
        checker = Checker(str(path), "", os.environ if env is None else env, path)
        roster = checker.roster(doc)
        if roster is not None and not checker.problems:
            rostercache.put_names(str(cache_dir), data, roster)
            return roster
    text = decode(data, path)
    doc, problems = parse(text, path)
    roster = _check(text, doc, problems, path, env)
    rostercache.put_doc(str(cache_dir), data, doc)
    rostercache.put_names(str(cache_dir), data, roster)
    return roster


class EnvRecorder(Mapping[str, str]):
    """The environment as validation sees it, noting every variable looked at (and its
    value, None when unset), so a cached outcome can be tied to exactly those."""

    def __init__(self, base: Mapping[str, str]) -> None:
        self.base = base
        self.reads: dict[str, str | None] = {}

    def __getitem__(self, key: str) -> str:
        value = self.base.get(key)
        self.reads[key] = value
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        # Whoever lists the environment depends on all of it.
        for key in self.base:
            self.reads[key] = self.base[key]
            yield key

    def __len__(self) -> int:
        return len(self.base)


def loads(data: bytes | str, path: Path, env: Mapping[str, str] | None = None) -> Roster:
    """Validate roster text as if it were the file at `path` (used to check edits before
    they are written)."""
    text = decode(data, path)
    doc, problems = parse(text, path)
    return _check(text, doc, problems, path, env)


def _check(
    text: str, doc: Any, problems: list[Problem], path: Path, env: Mapping[str, str] | None
) -> Roster:
    checker = Checker(str(path), text, os.environ if env is None else env, path)
    roster = checker.roster(doc)
    problems += checker.problems
    if problems or roster is None:
        raise RosterError(problems)
    return roster


def decode(data: bytes | str, path: Path) -> str:
    """UTF-8 text, or a problem at the first byte that is not UTF-8."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col_of_bytes(data, exc.start)
        raise RosterError(
            [
                Problem(
                    str(path),
                    line,
                    col,
                    f"not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                    "the roster must be a UTF-8 YAML file",
                )
            ]
        ) from None


def parse(text: str, path: Path) -> tuple[Any, list[Problem]]:
    """The round-trip document, with YAML errors turned into positioned problems.

    Duplicate mapping keys do not stop the check: they are listed, and the rest of the
    document (first value of each key) is still validated so every problem shows at once."""
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from mosaic.config import yamlio

    where = str(path)
    problems: list[Problem] = []
    try:
        try:
            return yamlio.load(text), []
        except DuplicateKeyError as exc:
            problems = [
                Problem(
                    where,
                    line + 1,
                    col + 1,
                    f"duplicate key {clip(key)!r} (first at line {first + 1})",
                )
                for line, col, key, first in yamlio.duplicate_keys(text)
            ] or [_marked(where, exc)]  # keys spelled apart that mean one (1 and 0x1)
            return yamlio.load(text, allow_duplicate_keys=True), problems
    except MarkedYAMLError as exc:
        # A duplicate merge key (<<) stays fatal even then, and is listed already.
        if not (problems and isinstance(exc, DuplicateKeyError)):
            problems.append(_marked(where, exc))
        raise RosterError(problems) from None
    except YAMLError as exc:
        position = getattr(exc, "position", None)
        line, col = _line_col_of_text(text, position) if isinstance(position, int) else (1, 1)
        reason = clip(getattr(exc, "reason", None) or str(exc).splitlines()[0], _YAML_CLIP)
        raise RosterError([Problem(where, line, col, f"not a YAML text file: {reason}")]) from None


def _marked(where: str, exc: Any) -> Problem:
    """A ruamel `MarkedYAMLError` as a problem at its mark."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = exc.problem or "invalid YAML"
    if exc.context and message.startswith("but "):
        message = f"{exc.context} {message}"
    elif exc.context:
        message += f" ({exc.context})"
    # ruamel quotes the text it stumbled on (an alias, a tag, a value) whole, however long.
    return Problem(where, line, col, f"YAML syntax error: {clip(message, _YAML_CLIP)}")


def _line_col_of_bytes(data: bytes, offset: int) -> tuple[int, int]:
    before = data[:offset]
    line_start = before.rfind(b"\n") + 1
    col = len(before[line_start:].decode("utf-8", errors="replace")) + 1
    return before.count(b"\n") + 1, col


def _line_col_of_text(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
