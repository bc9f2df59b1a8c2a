"""Where mosaic keeps things: the one copy of the file layout (docs/reference.md, "Files").

Everything under `<home>/fleet/` is named here and nowhere else; shell snippets get these
paths through the environment (`tmux.server.hook_environment`), never by spelling them.
Resolved once per command from flags and environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mosaic.config import locate


@dataclass(frozen=True)
class Paths:
    home: Path
    roster: Path

    @property
    def fleet(self) -> Path:
        return self.home / "fleet"

    @property
    def run(self) -> Path:
        """Locks, per-agent records, caches: never shared between homes."""
        return Path(locate.run_dir(str(self.home)))

    @property
    def logs(self) -> Path:
        return self.fleet / "logs"

    @property
    def db(self) -> Path:
        """The fleet database: events and the outbox (SQLite, WAL)."""
        return Path(locate.db_file(str(self.home)))

    @property
    def restart_lock(self) -> Path:
        return self.run / "restart.lock"

    @property
    def roster_lock(self) -> Path:
        """Edit lock beside the roster; never deleted, so flock on it is sound."""
        return self.roster.with_name(self.roster.name + ".lock")

    @property
    def agents_dir(self) -> Path:
        return self.run / "agents"

    def agent_record_lock(self, agent: str) -> Path:
        return self.agents_dir / f"{agent}.lock"

    def send_lock(self, agent: str) -> Path:
        """Serializes everything that types into one agent (send, approve, the outbox)."""
        return self.run / "send" / f"{agent}.lock"

    @property
    def tmux_conf(self) -> Path:
        return self.run / "tmux.conf"

    @property
    def tmux_tick(self) -> Path:
        return self.run / "tmux-tick"

    @property
    def hooks_log(self) -> Path:
        return self.run / "hooks.err"

    @property
    def watcher_heartbeat(self) -> Path:
        """The watcher's pid (content) and last tick (mtime): `status` reads it, never the
        watcher itself."""
        return self.run / "watcher.beat"

    @property
    def watcher_lock(self) -> Path:
        """Held by the running watcher: one per fleet, whatever started it."""
        return self.run / "watcher.lock"

    @property
    def status_socket(self) -> Path:
        """The watcher's unix socket answering `status --json`
        (docs/architecture.md, "status served by the watcher")."""
        return Path(locate.status_socket(str(self.home)))

    @property
    def web_token(self) -> Path:
        return self.run / "web.token"

    @property
    def ssh_dir(self) -> Path:
        return self.run / "ssh"

    def agent_log(self, agent: str) -> Path:
        return self.logs / f"{agent}.log"


def resolve(
    home: str | None = None,
    roster: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Paths:
    """Flags win over environment, environment over XDG defaults (rule in `locate`)."""
    home_dir, roster_file = locate.home_and_roster(
        home, roster, os.environ if env is None else env
    )
    return Paths(home=Path(home_dir), roster=Path(roster_file))
