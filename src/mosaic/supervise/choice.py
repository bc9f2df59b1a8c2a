"""Which supervisor runs the fleet: decided once, recorded, then obeyed.

`supervisor: auto` means systemd when a user manager answers. Probing on every command made
the answer depend on where a command ran (cron has no XDG_RUNTIME_DIR; a loaded machine
times the probe out), and a systemd fleet then got stop/start/status through the tmux path.
So the choice is made when the fleet starts (or its units are installed) and recorded in
the fleet database; later commands use the record. A command that needs the user manager
and cannot reach it fails saying why (`require_user_manager`); it never switches.

Without a record (a fleet started by mosaic 0.1, or never started) a running fleet still
tells: its tmux server runs in the holder unit's cgroup under systemd and anywhere else
under the tmux supervisor. That is a fact, not a guess, so it is recorded. Only when no
server runs either does a command that is not a start probe for a manager, for itself
alone: nothing runs to disagree with, and the fleet's first start makes the choice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mosaic.config.paths import Paths
from mosaic.config.roster import Roster, Supervisor, effective_supervisor
from mosaic.errors import ConfigError, OperationFailed
from mosaic.store import meta

_KEY = "supervisor"


@dataclass(frozen=True)
class Record:
    supervisor: Supervisor
    decided_at: float
    why: str


def recorded(paths: Paths) -> Record | None:
    value = meta.get(paths.db, _KEY)
    if not isinstance(value, dict):
        return None
    try:
        return Record(
            Supervisor(value["supervisor"]), float(value["decided_at"]), str(value["why"])
        )
    except (KeyError, TypeError, ValueError):
        return None


def record(paths: Paths, supervisor: Supervisor, why: str) -> Record:
    rec = Record(supervisor, time.time(), why)
    meta.put(paths.db, _KEY, {"supervisor": str(supervisor), "decided_at": rec.decided_at,
                              "why": why})  # fmt: skip
    return rec


def forget(paths: Paths) -> None:
    meta.delete(paths.db, _KEY)


def observed(pid: int | None) -> Supervisor | None:
    """Which supervisor runs the tmux server that `pid` belongs to (the server, or any
    process it started), read from its cgroup; None when there is no such process."""
    from mosaic.supervise.systemd.units import HOLDER_UNIT

    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    # "0::/user.slice/.../mosaic-tmux-holder.service" (v2), "1:name=systemd:/..." (v1)
    if any(HOLDER_UNIT in line.split(":", 2)[-1].split("/") for line in text.splitlines()):
        return Supervisor.SYSTEMD
    return Supervisor.TMUX


def for_server(paths: Paths) -> Supervisor:
    """For code the fleet's tmux server runs (its hooks): the record, else the cgroup this
    process shares with the server."""
    rec = recorded(paths)
    if rec is not None:
        return rec.supervisor
    return observed(os.getpid()) or Supervisor.TMUX


def manager_problem(env: Mapping[str, str]) -> str | None:
    """Why `systemctl --user` cannot reach a user manager from here, or None when it can."""
    from mosaic.supervise.systemd import systemctl

    if systemctl.user_manager_available(env):
        return None
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if not runtime_dir:
        return (
            "XDG_RUNTIME_DIR is not set (cron jobs and non-login shells lack it; "
            f"set XDG_RUNTIME_DIR=/run/user/{os.getuid()})"
        )
    if not os.path.exists(os.path.join(runtime_dir, "systemd", "private")) and not (
        env.get("DBUS_SESSION_BUS_ADDRESS") or os.path.exists(os.path.join(runtime_dir, "bus"))
    ):
        return f"no systemd user manager listens in XDG_RUNTIME_DIR={runtime_dir}"
    return f"`systemctl --user` got no answer within {systemctl.PROBE_TIMEOUT:g} s"


def require_user_manager(env: Mapping[str, str], why: str) -> None:
    problem = manager_problem(env)
    if problem is not None:
        raise OperationFailed(f"{why}, but the systemd user manager cannot be reached: {problem}")


def resolve(
    paths: Paths,
    roster: Roster,
    env: Mapping[str, str],
    *,
    deciding: bool,
    server_pid: Callable[[], int | None] = lambda: None,
) -> Supervisor:
    """The supervisor this command must use (never AUTO).

    `deciding`: the command starts the fleet, so it may make (and record) the choice.
    `server_pid`: the fleet's tmux server, asked only when there is no record (see the
    module doc) or an explicit setting disagrees with the record (switching supervisors
    under a running fleet would leave both restarting the same agents).
    """
    server = cache(server_pid)
    wanted = effective_supervisor(roster, env)
    rec = recorded(paths)
    if rec is None and (seen := observed(server())) is not None:
        rec = record(paths, seen, f"found the fleet's tmux server running under {seen}")
    if wanted is Supervisor.AUTO:
        if rec is not None:
            return rec.supervisor
        from mosaic.supervise.systemd import systemctl

        chosen = Supervisor.SYSTEMD if systemctl.user_manager_available(env) else Supervisor.TMUX
        if deciding:
            record(paths, chosen, "auto: " + ("a user manager answered" if chosen is
                   Supervisor.SYSTEMD else "no user manager answered"))  # fmt: skip
        return chosen
    if rec is not None and rec.supervisor is not wanted and server() is not None:
        raise ConfigError(
            f"the fleet runs under the {rec.supervisor} supervisor, but this command asks "
            f"for {wanted} (roster `supervisor:` or $MOSAIC_FLEET_SUPERVISOR); stop the "
            "whole fleet first, then start it to switch"
        )
    if deciding and (rec is None or rec.supervisor is not wanted):
        record(paths, wanted, "set in the roster or $MOSAIC_FLEET_SUPERVISOR")
    return wanted
