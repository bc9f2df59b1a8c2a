"""The context every fleet command works in: paths, the loaded roster, socket, supervisor."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from mosaic.config.load import load
from mosaic.config.paths import Paths
from mosaic.config.roster import Roster, Supervisor, effective_socket
from mosaic.tmux.client import Tmux
from mosaic.tmux.server import make_tmux, server_pid


@dataclass(frozen=True)
class Fleet:
    paths: Paths
    roster: Roster
    socket: str
    supervisor: Supervisor  # never AUTO: resolved by `supervise.choice`
    env: Mapping[str, str]

    @cached_property
    def tmux(self) -> Tmux:
        return make_tmux(self.paths, self.socket)


def open_fleet(
    paths: Paths,
    env: Mapping[str, str] | None = None,
    *,
    deciding: bool = False,
    roster: Roster | None = None,
) -> Fleet:
    """Load the roster (unless the caller has) and resolve socket and supervisor.
    `deciding`: this command starts the fleet and may record the supervisor (see
    `supervise.choice`)."""
    from mosaic.supervise import choice

    env = dict(os.environ) if env is None else env
    roster = load(paths.roster, cache_dir=paths.run) if roster is None else roster
    socket = effective_socket(roster, env)
    tmux = make_tmux(paths, socket)
    supervisor = choice.resolve(
        paths, roster, env, deciding=deciding, server_pid=lambda: server_pid(tmux)
    )
    return Fleet(paths, roster, socket, supervisor, env)

