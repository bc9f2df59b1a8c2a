"""Round-trip YAML: the one library that both reads and rewrites the roster.

Reading and writing with the same round-trip loader means `restart: no` stays the string it
looks like (YAML 1.2) and an edit keeps the user's comments, key order and quoting. The
indentation of block sequences is guessed from the file itself, so an unedited roster dumps
back byte for byte whichever of the two common list styles the user wrote.

ruamel.yaml costs tens of milliseconds to import, so it is imported inside the functions:
commands that never touch the roster do not pay for it.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

# Wide enough that the emitter never folds a long string onto a second line.
_WIDTH = 4096

_KEY_ONLY = re.compile(r"^( *)[^\s#-][^#]*:\s*(#.*)?$")
_DASH = re.compile(r"^( *)- ")
_DOC_START = re.compile(r"^---(\s|$)")


@dataclass(frozen=True)
class Style:
    """Block indentation as ruamel understands it: `sequence` is where an item's content
    starts relative to the parent key, `offset` where its dash is."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2
    explicit_start: bool = False


def guess_style(text: str) -> Style:
    """Take the indentation of the first block list under a key (and of the first nested
    mapping); fall back to the style mosaic itself writes."""
    lines = text.splitlines()
    mapping: int | None = None
    sequence: int | None = None
    offset: int | None = None
    prev_key_indent: int | None = None
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        dash = _DASH.match(line)
        if dash and prev_key_indent is not None and offset is None:
            offset = len(dash.group(1)) - prev_key_indent
            rest = line[dash.end() :]
            sequence = offset + 2 + (len(rest) - len(rest.lstrip(" ")))
        elif prev_key_indent is not None and mapping is None and not dash:
            indent = len(line) - len(line.lstrip(" "))
            if indent > prev_key_indent:
                mapping = indent - prev_key_indent
        key = _KEY_ONLY.match(line)
        prev_key_indent = len(key.group(1)) if key else None
        if mapping is not None and offset is not None:
            break
    style = Style()
    explicit = _starts_with_marker(lines)
    if offset is None or sequence is None or offset < 0 or sequence < offset + 2:
        sequence, offset = style.sequence, style.offset
    return Style(
        mapping=mapping if mapping and mapping > 0 else style.mapping,
        sequence=sequence,
        offset=offset,
        explicit_start=explicit,
    )


def _starts_with_marker(lines: list[str]) -> bool:
    """True when the first non-comment line is `---` (a header comment may precede it)."""
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        return bool(_DOC_START.match(line))
    return False


def _yaml(style: Style) -> Any:
    from ruamel.yaml import YAML

    from mosaic.config import yamlguard

    yaml = YAML(typ="rt")
    yaml.Composer = yamlguard.GuardedComposer
    yaml.Constructor = yamlguard.GuardedConstructor
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    yaml.preserve_quotes = True
    yaml.width = _WIDTH
    yaml.explicit_start = style.explicit_start
    return yaml


def load(text: str, allow_duplicate_keys: bool = False) -> Any:
    """Parse one YAML document into round-trip containers (with line/column info).

    Raises ruamel's own errors (never another exception: `yamlguard`); `load` turns them
    into positioned problems. ruamel's warnings about legal YAML (YAML 1.1 floats, re-used
    anchors) are not the user's business: the checker judges the values themselves."""
    from mosaic.config import yamlguard

    yamlguard.check_directives(text)
    yaml = _yaml(guess_style(text))
    yaml.allow_duplicate_keys = allow_duplicate_keys
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return yaml.load(text)


def duplicate_keys(text: str) -> list[tuple[int, int, str, int]]:
    """Every repeated mapping key as (line, col, key, first_line), 0-based.

    The loader stops at the first duplicate; the node graph does not check them, so walking
    it finds all of them in one pass."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    found: list[tuple[int, int, str, int]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stack = [_yaml(Style()).compose(text)]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                label = str(key.value)
                mark = key.start_mark
                if label in first:
                    found.append((mark.line, mark.column, label, first[label]))
                else:
                    first[label] = mark.line
                stack.append(value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return sorted(found)


def dump(doc: Any, style: Style | None = None) -> str:
    """Serialize round-trip containers with the given (or default) indentation style."""
    out = io.StringIO()
    _yaml(style or Style()).dump(doc, out)
    return out.getvalue()
