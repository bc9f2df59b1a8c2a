"""Where mosaic keeps things (SPEC §3), resolved once per command from env and flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mosaic import locate


@dataclass(frozen=True)
class Paths:
    home: Path
    roster: Path

    @property
    def fleet(self) -> Path:
        return self.home / "fleet"

    @property
    def run(self) -> Path:
        return Path(locate.run_dir(str(self.home)))

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
