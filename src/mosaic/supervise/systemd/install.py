"""`install` / `uninstall`: plan what changes in the user unit directory, then apply it.

Planning only reads (the unit directory, and for uninstall the manager's list of loaded
units), so `--dry-run` prints exactly the plan that `apply` would carry out. The plan is
computed from an `InstalledState` snapshot by pure functions, which keeps the decision
logic testable without systemd.

What counts as "installed by us": the holder unit, the agent template, our drop-in
`mosaic-agent@NAME.service.d/10-mosaic.conf`, and enablement symlinks to those units in any
`*.wants/` directory of the unit directory. An agent that has a drop-in or a symlink but is
no longer in the roster was removed since the last install: it is stopped, disabled and its
drop-in deleted. Files of the user's own (other drop-ins beside ours) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mosaic.base.fs import atomic_write, ensure_dir
from mosaic.config.roster import Roster
from mosaic.errors import OperationFailed
from mosaic.supervise.systemd import systemctl, units

LINGER_DIR = Path("/var/lib/systemd/linger")
UNIT_FILE_MODE = 0o600


@dataclass(frozen=True)
class InstalledState:
    """What a previous install left in the unit directory."""

    unit_dir: Path
    files: Mapping[Path, str] = field(default_factory=dict)  # our files -> current content
    dropin_agents: frozenset[str] = frozenset()  # agents with our drop-in
    enabled: frozenset[str] = frozenset()  # our units with an enablement symlink
    dropin_dirs: tuple[Path, ...] = ()  # every mosaic-agent@*.service.d, ours or emptied

    @property
    def agents(self) -> frozenset[str]:
        enabled_agents = {units.agent_of_unit(u) for u in self.enabled}
        return self.dropin_agents | {a for a in enabled_agents if a}


@dataclass(frozen=True)
class FileChange:
    path: Path
    content: str
    action: str  # "create" | "update" | "keep"


@dataclass(frozen=True)
class InstallPlan:
    """Everything `apply` will do, in the order it does it."""

    kind: str  # "install" | "uninstall"
    unit_dir: Path
    stop: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    writes: tuple[FileChange, ...] = ()
    remove_files: tuple[Path, ...] = ()
    remove_dirs: tuple[Path, ...] = ()  # removed only when empty (user drop-ins survive)
    enable: tuple[str, ...] = ()
    already_enabled: frozenset[str] = frozenset()
    reset_failed: tuple[str, ...] = ()

    @property
    def changed_files(self) -> tuple[FileChange, ...]:
        return tuple(w for w in self.writes if w.action != "keep")

    def describe(self) -> list[str]:
        """Human-readable lines, one per action; the same text for --dry-run and for real."""
        out = [f"unit directory: {self.unit_dir}"]
        out += [f"stop {u}" for u in self.stop]
        out += [f"disable {u}" for u in self.disable]
        for w in self.writes:
            verb = {"create": "write", "update": "update", "keep": "unchanged"}[w.action]
            out.append(f"{verb} {w.path}")
        out += [f"remove {p}" for p in self.remove_files]
        if self.kind == "install" or self.remove_files or self.disable:
            out.append("systemctl --user daemon-reload")
        for u in self.enable:
            note = " (already enabled)" if u in self.already_enabled else ""
            out.append(f"enable {u}{note}")
        return out


# --- reading the current state -------------------------------------------------------------


def _ours(name: str) -> bool:
    return name in (units.HOLDER_UNIT, units.WATCHER_UNIT) or units.agent_of_unit(name) is not None


def scan_installed(unit_dir: Path) -> InstalledState:
    """Snapshot of our files and enablement links; a missing directory is an empty state."""
    files: dict[Path, str] = {}
    for name in (units.HOLDER_UNIT, units.AGENT_TEMPLATE, units.WATCHER_UNIT):
        path = unit_dir / name
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            files[path] = path.read_text()
    dropin_agents: set[str] = set()
    enabled: set[str] = set()
    dropin_dirs: list[Path] = []
    try:
        entries = sorted(unit_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    for entry in entries:
        if entry.name.endswith(".service.d") and entry.is_dir():
            agent = units.agent_of_unit(entry.name[: -len(".d")])
            if agent:
                dropin_dirs.append(entry)
            dropin = entry / units.DROPIN_NAME
            if agent and dropin.is_file():
                dropin_agents.add(agent)
                files[dropin] = dropin.read_text()
        elif entry.name.endswith((".wants", ".requires")) and entry.is_dir():
            enabled.update(link.name for link in entry.iterdir() if _ours(link.name))
    return InstalledState(
        unit_dir, files, frozenset(dropin_agents), frozenset(enabled), tuple(dropin_dirs)
    )


# --- planning (pure) -----------------------------------------------------------------------


def compute_install_plan(
    ctx: units.UnitContext,
    roster: Roster,
    installed: InstalledState,
    enable: bool = True,
) -> InstallPlan:
    unit_dir = installed.unit_dir
    wanted = units.render_all(ctx, roster, unit_dir)
    writes = []
    for path, content in wanted.items():
        old = installed.files.get(path)
        action = "create" if old is None else ("keep" if old == content else "update")
        writes.append(FileChange(path, content, action))
    gone = sorted(installed.agents - set(roster.names))
    gone_units = [units.agent_unit(a) for a in gone]
    to_enable = [units.HOLDER_UNIT, units.WATCHER_UNIT,
                 *(units.agent_unit(a) for a in roster.names)]  # fmt: skip
    return InstallPlan(
        kind="install",
        unit_dir=unit_dir,
        stop=tuple(gone_units),
        disable=tuple(u for u in gone_units if u in installed.enabled),
        writes=tuple(writes),
        remove_files=tuple(
            units.dropin_path(unit_dir, a) for a in gone if a in installed.dropin_agents
        ),
        remove_dirs=tuple(units.dropin_dir(unit_dir, a) for a in gone),
        enable=tuple(to_enable) if enable else (),
        already_enabled=installed.enabled,
    )


def compute_uninstall_plan(
    installed: InstalledState, loaded: Sequence[str] | None = None
) -> InstallPlan:
    """`loaded`: our units the manager has loaded (None when it could not be asked)."""
    unit_dir = installed.unit_dir
    known = sorted([units.WATCHER_UNIT, units.HOLDER_UNIT,
                    *(units.agent_unit(a) for a in installed.agents)], key=_unit_order)  # fmt: skip
    if loaded is not None:
        known = sorted(set(known) | {u for u in loaded if _ours(u)}, key=_unit_order)
        # A unit that is not loaded is not running: nothing to stop.
        to_stop = [u for u in known if u in loaded]
    else:
        to_stop = [
            u for u in known
            if u in (units.HOLDER_UNIT, units.WATCHER_UNIT) or u in installed.enabled
        ]  # fmt: skip
    return InstallPlan(
        kind="uninstall",
        unit_dir=unit_dir,
        stop=tuple(to_stop),
        disable=tuple(sorted(installed.enabled, key=_unit_order)),
        remove_files=tuple(installed.files),
        remove_dirs=installed.dropin_dirs,
        reset_failed=tuple(known),
    )


def _unit_order(unit: str) -> tuple[int, str]:
    """Agents, then the watcher, then the holder, so a listing reads in stop order."""
    rank = {units.WATCHER_UNIT: 1, units.HOLDER_UNIT: 2}
    return (rank.get(unit, 0), unit)


def plan_install(
    ctx: units.UnitContext,
    roster: Roster,
    unit_dir: Path | None = None,
    enable: bool = True,
) -> InstallPlan:
    unit_dir = units.user_unit_dir() if unit_dir is None else unit_dir
    return compute_install_plan(ctx, roster, scan_installed(unit_dir), enable=enable)


def plan_uninstall(
    unit_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    ask_manager: bool = True,
) -> InstallPlan:
    """Needs no roster: uninstall must work even when the roster is broken or gone."""
    unit_dir = units.user_unit_dir(env) if unit_dir is None else unit_dir
    loaded = None
    if ask_manager:
        loaded = systemctl.list_units(
            [units.HOLDER_UNIT, units.WATCHER_UNIT, f"{units.AGENT_PREFIX}*.service"], env=env
        )
    return compute_uninstall_plan(scan_installed(unit_dir), loaded)


# --- applying ------------------------------------------------------------------------------


def apply(plan: InstallPlan, env: Mapping[str, str] | None = None) -> list[str]:
    """Carry out `plan` against the user manager; returns what was done, line by line.

    Order matters: stop before disable (a disabled unit can still run), disable before the
    files go (systemctl resolves an instance through its template file), write and remove
    before daemon-reload, enable last (it needs the manager to know the new units).
    """
    done: list[str] = []
    if plan.stop:
        systemctl.stop(list(plan.stop), env=env)
        done += [f"stopped {u}" for u in plan.stop]
    if plan.disable:
        systemctl.disable(list(plan.disable), env=env)
        done += [f"disabled {u}" for u in plan.disable]
    if plan.writes:
        ensure_dir(plan.unit_dir)
    for change in plan.changed_files:
        atomic_write(change.path, change.content.encode(), mode=UNIT_FILE_MODE)
        done.append(f"wrote {change.path}")
    for path in plan.remove_files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            done.append(f"removed {path}")
    for directory in plan.remove_dirs:
        with contextlib.suppress(FileNotFoundError, OSError):
            directory.rmdir()  # only succeeds when empty: the user's own drop-ins stay
    if plan.kind == "install" or plan.remove_files or plan.disable:
        systemctl.daemon_reload(env=env)
        done.append("reloaded the user manager")
    if plan.reset_failed:
        systemctl.reset_failed(list(plan.reset_failed), env=env)
    if plan.enable:
        systemctl.enable(list(plan.enable), env=env)
        done += [f"enabled {u}" for u in plan.enable]
    return done


def require_user_manager(env: Mapping[str, str] | None = None) -> None:
    if not systemctl.user_manager_available(env):
        raise OperationFailed(
            "the systemd user manager is not reachable (systemctl --user cannot connect), "
            "so units cannot be installed or removed here. The tmux supervisor works "
            "without it: use `supervisor: tmux` in the roster or MOSAIC_FLEET_SUPERVISOR=tmux."
        )


def active_units(
    names: Sequence[str], env: Mapping[str, str] | None = None
) -> list[str]:
    """Which of `names` run now: changed unit files only take effect when they restart."""
    states = systemctl.is_active(list(names), env=env)
    return [u for u in names if states.get(u) in units.UP_STATES]


# --- lingering -----------------------------------------------------------------------------


def linger_state(
    user: str | None = None,
    linger_dir: Path = LINGER_DIR,
    env: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> str:
    """"yes", "no" or "unknown": without lingering the user manager (and the fleet) stops
    at logout and starts only at login. Failing to find out is never an error."""
    if user is None:
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            return "unknown"
    try:
        proc = subprocess.run(
            ["loginctl", "show-user", user, "-p", "Linger"],
            env=dict(os.environ if env is None else env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode == 0:
            value = proc.stdout.strip().partition("=")[2]
            if value in ("yes", "no"):
                return value
    except (OSError, subprocess.TimeoutExpired):
        pass
    # logind keeps one file per lingering user; its directory is the authority when present.
    if linger_dir.is_dir():
        return "yes" if (linger_dir / user).exists() else "no"
    return "unknown"


def linger_advice(state: str) -> str | None:
    if state == "yes":
        return None
    lead = "lingering is off" if state == "no" else "could not tell whether lingering is on"
    return (
        f"note: {lead}: the fleet stops when you log out and starts at your next login. "
        "`loginctl enable-linger` keeps your units running after logout and starts them "
        "at boot."
    )
