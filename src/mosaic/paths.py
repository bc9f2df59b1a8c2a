"""Where mosaic keeps things (SPEC §3), resolved once per command from env and flags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    home: Path
    roster: Path

    @property
    def fleet(self) -> Path:
        return self.home / "fleet"

    @property
    def run(self) -> Path:
        return self.fleet / "run"

    @property
    def logs(self) -> Path:
        return self.fleet / "logs"

    @property
    def restart_lock(self) -> Path:
        return self.run / "restart.lock"

    @property
    def roster_lock(self) -> Path:
        """Edit lock beside the roster; never deleted, so flock on it is sound."""
        return self.roster.with_name(self.roster.name + ".lock")

    def agent_log(self, agent: str) -> Path:
        return self.logs / f"{agent}.log"


def default_home(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get("MOSAIC_HOME"):
        return Path(env["MOSAIC_HOME"]).expanduser()
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]).expanduser() / "mosaic"
    return Path(env.get("HOME") or Path.home()).expanduser() / ".config" / "mosaic"


def resolve(
    home: str | None = None,
    roster: str | None = None,
    env: dict[str, str] | None = None,
) -> Paths:
    """Flags win over environment, environment over XDG defaults."""
    env = dict(os.environ) if env is None else env
    home_path = Path(home).expanduser() if home else default_home(env)
    if roster:
        roster_path = Path(roster).expanduser()
    elif env.get("MOSAIC_FLEET_ROSTER"):
        roster_path = Path(env["MOSAIC_FLEET_ROSTER"]).expanduser()
    else:
        roster_path = home_path / "fleet" / "roster.yaml"
    return Paths(home=home_path.absolute(), roster=roster_path.absolute())
