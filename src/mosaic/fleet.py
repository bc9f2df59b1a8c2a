"""The context every fleet command works in: paths, the loaded roster, socket, supervisor."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from mosaic import roster as roster_mod
from mosaic import session
from mosaic.paths import Paths
from mosaic.roster import Roster
from mosaic.tmux import Tmux


@dataclass(frozen=True)
class Fleet:
    paths: Paths
    roster: Roster
    socket: str
    # Resolved: "tmux" or "systemd" (never "auto").
    supervisor: str

    @cached_property
    def tmux(self) -> Tmux:
        return session.make_tmux(self.paths, self.socket)


def choose_supervisor(wanted: str, env: dict[str, str]) -> str:
    """`auto` means systemd exactly when a user manager answers (SPEC §1)."""
    if wanted != "auto":
        return wanted
    from mosaic import systemctl

    return "systemd" if systemctl.user_manager_available(env) else "tmux"


def open_fleet(paths: Paths, env: dict[str, str] | None = None) -> Fleet:
    env = dict(os.environ) if env is None else env
    roster = roster_mod.load(paths.roster, cache_dir=paths.run)
    socket = roster_mod.effective_socket(roster, env)
    wanted = roster_mod.effective_supervisor(roster, env)
    return Fleet(paths, roster, socket, choose_supervisor(wanted, env))
