"""Where the home and the roster are (docs/reference.md, "Files"), on plain strings.

Kept free of pathlib and dataclasses because `mosaic fleet validate`'s fast path resolves
these before anything heavy is imported; `paths.resolve` wraps this, so there is one rule.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


def home_and_roster(
    home: str | None, roster: str | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """Absolute home and roster paths: flags win over environment, environment over XDG."""
    if home:
        home_dir = os.path.expanduser(home)
    elif env.get("MOSAIC_HOME"):
        home_dir = os.path.expanduser(env["MOSAIC_HOME"])
    elif env.get("XDG_CONFIG_HOME"):
        home_dir = os.path.join(os.path.expanduser(env["XDG_CONFIG_HOME"]), "mosaic")
    else:
        user_home = os.path.expanduser(env.get("HOME") or "~")
        home_dir = os.path.join(user_home, ".config", "mosaic")
    if roster:
        roster_file = os.path.expanduser(roster)
    elif env.get("MOSAIC_FLEET_ROSTER"):
        roster_file = os.path.expanduser(env["MOSAIC_FLEET_ROSTER"])
    else:
        roster_file = os.path.join(home_dir, "fleet", "roster.yaml")
    return os.path.abspath(home_dir), os.path.abspath(roster_file)


def run_dir(home: str) -> str:
    """Per-home runtime state (locks, caches, the tmux tick script)."""
    return os.path.join(home, "fleet", "run")


def db_file(home: str) -> str:
    """The fleet database (events, outbox, supervision records)."""
    return os.path.join(home, "fleet", "fleet.db")


def status_socket(home: str) -> str:
    """Where the watcher serves `status` (`watch/serve.py`); its client resolves this
    before anything heavy is imported."""
    return os.path.join(run_dir(home), "status.sock")
