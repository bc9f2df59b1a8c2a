"""Commands a controller runs on a host over SSH (hidden from `--help`; docs/hosts.md)."""

from __future__ import annotations

import sys

import click

from mosaic.cli.common import paths_of


@click.command("roster-put", hidden=True)
@click.pass_context
def roster_put_cmd(ctx: click.Context) -> None:
    """Replace this host's roster with the one on stdin, cut for it by a controller."""
    from mosaic.hosts import hostroster

    hostroster.receive(paths_of(ctx), sys.stdin.buffer.read(hostroster.MAX_BYTES + 1))
