"""Shared helpers for command modules: paths from the context, JSON output."""

from __future__ import annotations

from typing import Any

import click

from mosaic.config.paths import Paths


def paths_of(ctx: click.Context) -> Paths:
    obj = ctx.find_root().obj if ctx.obj is None else ctx.obj
    assert isinstance(obj, Paths)
    return obj


def echo_json(doc: Any) -> None:
    from mosaic.cli.render import json_document

    click.echo(json_document(doc), nl=False)
