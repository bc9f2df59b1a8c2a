"""click's side of shell completion (docs/reference.md, "completion"): the `shell_complete`
callbacks of the arguments and options that take agent, runtime, preset or host names.

They answer what `quickcomplete` could not answer without click (a roster not loaded since
it changed, words it leaves to click), with the same candidates (`quickcomplete.candidates`).
A roster that cannot be read completes to nothing: a TAB never prints an error.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem

from mosaic.cli import quickcomplete
from mosaic.errors import MosaicError


def _flags(ctx: click.Context) -> dict[str, str]:
    """`fleet`'s --mosaic-home and --roster as typed; its callback does not run while
    completing, so they are read from the parsed parameters."""
    flags: dict[str, str] = {}
    current: click.Context | None = ctx
    while current is not None:
        for param, flag in (("mosaic_home", "--mosaic-home"), ("roster", "--roster")):
            value = current.params.get(param)
            if isinstance(value, str) and value:
                flags.setdefault(flag, value)
        current = current.parent
    return flags


def _names(ctx: click.Context) -> dict[str, list[Any]] | None:
    flags = _flags(ctx)
    found = quickcomplete.names(flags, os.environ)
    if found is not None:
        return found
    from mosaic.config import paths, rostercache
    from mosaic.config.load import load

    where = paths.resolve(flags.get("--mosaic-home"), flags.get("--roster"))
    try:
        return rostercache.names_of(load(where.roster, cache_dir=where.run))
    except MosaicError:
        return None


def _items(kind: str, found: dict[str, list[Any]], incomplete: str) -> list[CompletionItem]:
    return [
        CompletionItem(value, help=help)
        for value, help in quickcomplete.candidates(kind, found, incomplete)
    ]


def complete_agents(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    found = _names(ctx)
    return [] if found is None else _items("agents", found, incomplete)


def complete_runtimes(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The roster's runtimes; without a readable roster, the built-in ones."""
    found = _names(ctx)
    if found is None:
        from mosaic.config.runtimes import builtin_runtimes

        found = {"runtimes": sorted(builtin_runtimes())}
    return _items("runtimes", found, incomplete)


def complete_hosts(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The fleet's machines: `local` and the roster's hosts (`events --host`)."""
    found = _names(ctx)
    return [] if found is None else _items("hosts", found, incomplete)


def complete_presets(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from mosaic.config import presets

    return [
        CompletionItem(name, help=presets.get(name).description)
        for name in presets.names()
        if name.startswith(incomplete)
    ]
