"""ruamel.yaml's round-trip composer and constructor, closed so that any text ends in a
document or in a positioned YAML error (a `MarkedYAMLError`), never in another exception.

Left alone, ruamel answers odd but well-formed YAML with whatever Python raises: explicit
tags on the wrong scalar (`!!int abc` ValueError, `!!bool x` KeyError, `!!set x`
AttributeError), integers past Python's digit limit (ValueError), a mapping used as a key
(`? {a: 1}` TypeError), and nesting it recurses into until RecursionError (and, in flow
style, in time that grows with the square of the depth). A roster's keys are always plain
names and it is a handful of levels deep, so the composer refuses complex keys and deep
nesting at the node where they start, and the constructor turns any failure to build a
value into an error at that value's node. Imported only by `yamlio`, with ruamel itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, StreamMark, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

# Far deeper than any roster (5 levels) and far shallower than ruamel's recursion allows.
MAX_DEPTH = 64
_CLIP = 40  # characters of a value quoted back in a message


# A `%YAML` directive line; ruamel asserts (AssertionError) on a minor version it lacks.
_DIRECTIVE = re.compile(r"^%YAML[ \t]+(\S*)", re.MULTILINE)
VERSIONS = ("1.1", "1.2")


def check_directives(text: str) -> None:
    """Refuse a `%YAML` directive ruamel cannot read, at its position: ruamel itself answers a
    version 2.x with a positioned error but a 1.x other than 1.1/1.2 with an assertion."""
    for match in _DIRECTIVE.finditer(text):
        version = match.group(1)
        if version in VERSIONS:
            continue
        line = text.count("\n", 0, match.start(1))
        column = match.start(1) - (text.rfind("\n", 0, match.start(1)) + 1)
        mark = StreamMark(None, match.start(1), line, column)
        raise MarkedYAMLError(
            None, None, f"unsupported YAML version {_clipped(version)} (use 1.1 or 1.2)", mark
        )


def short_tag(tag: Any) -> str:
    text = str(getattr(tag, "value", tag))
    return text.replace("tag:yaml.org,2002:", "!!")


def _kind(node: Any) -> str:
    if isinstance(node, MappingNode):
        return "mapping"
    if isinstance(node, SequenceNode):
        return "list"
    return "value"


def _clipped(value: str) -> str:
    return repr(value if len(value) <= _CLIP else value[:_CLIP] + "…")


class GuardedComposer(Composer):
    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader=loader)
        # A re-used anchor is legal YAML (the later one wins): no warning on stderr.
        self.warn_double_anchors = False

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.depth >= MAX_DEPTH and not self.parser.check_event(AliasEvent):
            mark = self.parser.peek_event().start_mark
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        return super().compose_node(parent, index)

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        for key, _ in node.value:
            if not isinstance(key, ScalarNode):
                raise ComposerError(
                    None,
                    None,
                    f"a mapping key must be a plain name, not a {_kind(key)}",
                    key.start_mark,
                )
        return node


class _Guarded:
    """A constructor's deferred second half, failing like the first half would."""

    def __init__(self, steps: Iterator[Any], node: Any) -> None:
        self.steps = steps
        self.node = node

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.steps
        except YAMLError:
            raise
        except Exception as exc:
            raise unreadable(self.node, exc) from None


class GuardedConstructor(RoundTripConstructor):
    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            data = super().construct_non_recursive_object(node, tag)
        except YAMLError:
            raise
        except Exception as exc:
            raise unreadable(node, exc) from None
        # A collection finishes later, in construct_document; children wrap their own.
        pending = self.state_generators
        if pending and not isinstance(pending[-1], _Guarded):
            pending[-1] = _Guarded(pending[-1], node)
        return data


def unreadable(node: Any, exc: Exception) -> ConstructorError:
    tag = short_tag(node.tag)
    if isinstance(node, ScalarNode):
        what = _clipped(str(node.value))
        reason = " (too many digits)" if "digits" in str(exc) else ""
        message = f"cannot read {what} as {tag}{reason}"
    else:
        message = f"cannot read a {_kind(node)} as {tag}"
    return ConstructorError(None, None, message, node.start_mark)
