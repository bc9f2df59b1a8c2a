"""Shared helpers for command modules: paths from the context, JSON output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mosaic.config.paths import Paths

if TYPE_CHECKING:
    from mosaic.config.roster import Roster


def paths_of(ctx: click.Context) -> Paths:
    obj = ctx.find_root().obj if ctx.obj is None else ctx.obj
    assert isinstance(obj, Paths)
    return obj


def echo_json(doc: Any) -> None:
    from mosaic.cli.render import json_document

    click.echo(json_document(doc), nl=False)


def reader_gone() -> bool:
    """Whether nobody reads our stdout any more: a pipe or socket whose other end closed
    (`| head` finished, the SSH client of a remote `logs -f` left). A following command
    checks this while idle, so it ends instead of lingering until its next write."""
    import select

    poller = select.poll()
    poller.register(1, 0)  # no events asked: POLLERR/POLLHUP are reported regardless
    try:
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except OSError:
        return True


def roster_if_needed(paths: Paths, agent: str | None) -> Roster | None:
    """The roster, when a command that a one-machine fleet answers without it needs it:
    AGENT must be one of its agents, or it may declare hosts (docs/hosts.md)."""
    from mosaic.config.load import load_bytes, read
    from mosaic.hosts.declared import may_declare

    if agent is None:
        try:
            data = paths.roster.read_bytes()
        except OSError:
            return None
        if not may_declare(data):
            return None
    else:
        data = read(paths.roster)
    return load_bytes(data, paths.roster, cache_dir=paths.run)
