"""systemd user units for the fleet, rendered as text from plain values.

Rendering is pure: a `UnitContext` in, unit text out, byte-for-byte deterministic, so the
units can be golden-tested and diffed against what is installed before anything is written.
Everything environment-dependent (which tmux, which interpreter, which PATH) is resolved once
in `UnitContext.from_environment`; the user manager does not inherit a login shell's
environment, so the units must carry all of it explicitly.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mosaic.config.paths import Paths
from mosaic.config.roster import Agent, RestartPolicy, Roster, effective_socket
from mosaic.errors import ConfigError, ExitCode, TmuxMissingError
from mosaic.tmux.server import hook_environment

HOLDER_UNIT = "mosaic-tmux-holder.service"
WATCHER_UNIT = "mosaic-watcher.service"
AGENT_TEMPLATE = "mosaic-agent@.service"
AGENT_PREFIX = "mosaic-agent@"
DROPIN_NAME = "10-mosaic.conf"
# Restart= waits this long (the `restarting` event's delay_s under systemd).
RESTART_SEC_S = 1.0
# What `enable` hooks the units into: the target a user manager reaches at login (or at boot
# with lingering on).
WANTED_BY = "default.target"

# ActiveState values that mean the unit is (or is becoming) up.
UP_STATES = frozenset({"active", "activating", "reloading"})

HEADER = "# Written by `mosaic fleet install`; rewritten on every install, do not edit.\n"

# systemd `Restart=` value for each roster restart policy.
RESTART_VALUES = {
    RestartPolicy.ALWAYS: "always",
    RestartPolicy.ON_FAILURE: "on-failure",
    RestartPolicy.NEVER: "no",
}


def agent_unit(name: str) -> str:
    """The instance of the agent template that runs agent `name` (`%i` is the raw name)."""
    return f"{AGENT_PREFIX}{name}.service"


def agent_of_unit(unit: str) -> str | None:
    """Inverse of `agent_unit`; None for anything that is not an agent instance."""
    if unit.startswith(AGENT_PREFIX) and unit.endswith(".service"):
        name = unit[len(AGENT_PREFIX) : -len(".service")]
        return name or None
    return None


def dropin_dir(unit_dir: Path, name: str) -> Path:
    return unit_dir / f"{agent_unit(name)}.d"


def dropin_path(unit_dir: Path, name: str) -> Path:
    return dropin_dir(unit_dir, name) / DROPIN_NAME


def user_unit_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where a user's own units live: `$XDG_CONFIG_HOME/systemd/user` or the ~/.config one."""
    env = os.environ if env is None else env
    config = env.get("XDG_CONFIG_HOME")
    if config and os.path.isabs(config):
        base = Path(config)
    else:
        base = Path(env.get("HOME") or Path.home()) / ".config"
    return base / "systemd" / "user"


@dataclass(frozen=True)
class UnitContext:
    """Every value that ends up in the unit files; all paths absolute."""

    python: str  # interpreter running mosaic; a venv's bin/python stays unresolved on purpose
    tmux: str
    home: str  # MOSAIC_HOME
    roster: str  # MOSAIC_FLEET_ROSTER
    socket: str  # tmux -L name (MOSAIC_TMUX_SOCKET)
    path: str  # the installing user's PATH, so runtimes resolve as in their shell
    tmux_tmpdir: str | None = None
    lang: str | None = None
    lc_all: str | None = None
    restart_sec: float = RESTART_SEC_S
    start_limit_interval_sec: int = 60
    start_limit_burst: int = 5
    stop_timeout_sec: int = 20

    @property
    def paths(self) -> Paths:
        return Paths(Path(self.home), Path(self.roster))

    @property
    def tmux_conf(self) -> str:
        """Written by the supervisor core before the holder starts; only referenced here."""
        return str(self.paths.tmux_conf)

    def environment(self) -> list[tuple[str, str]]:
        """The variables both units carry, in a fixed order (golden files depend on it):
        what the tmux server's hooks need (the holder's server inherits it), then the
        user's PATH and locale."""
        pairs = list(hook_environment(self.paths, self.socket, self.python).items())
        if self.tmux_tmpdir:
            pairs.append(("TMUX_TMPDIR", self.tmux_tmpdir))
        pairs.append(("PATH", self.path))
        if self.lang:
            pairs.append(("LANG", self.lang))
        if self.lc_all:
            pairs.append(("LC_ALL", self.lc_all))
        return pairs

    @classmethod
    def from_environment(
        cls,
        paths: Paths,
        roster: Roster,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
    ) -> UnitContext:
        """Resolve the values from the installing process; the only impure part of this module."""
        env = os.environ if env is None else env
        search_path = env.get("PATH") or os.defpath
        tmux = shutil.which("tmux", path=search_path)
        if tmux is None:
            raise TmuxMissingError()
        interpreter = python or sys.executable
        if not interpreter:
            raise ConfigError("cannot tell which Python interpreter runs mosaic")
        tmpdir = env.get("TMUX_TMPDIR") or None
        return cls(
            python=os.path.abspath(interpreter),
            tmux=os.path.abspath(tmux),
            home=str(paths.home),
            roster=str(paths.roster),
            socket=effective_socket(roster, env),
            path=search_path,
            tmux_tmpdir=os.path.abspath(tmpdir) if tmpdir else None,
            lang=env.get("LANG") or None,
            lc_all=env.get("LC_ALL") or None,
        )


# --- quoting -------------------------------------------------------------------------------
# Unit files are parsed by systemd, not a shell. In values `%` starts a specifier; in command
# lines `$` also expands variables and words split on whitespace unless double-quoted.


def _reject_control(value: str, what: str) -> None:
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise ConfigError(f"{what} contains a control character, which a unit file cannot hold")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_word(word: str, program: bool = False) -> str:
    """One word of ExecStart= et al.: specifiers and `$` escaped, quoted when needed.

    systemd expands `$VAR` (and collapses `$$`) in the arguments only, never in the program
    path, so there a `$` must stay as it is.
    """
    _reject_control(word, f"command argument {word!r}")
    escaped = word.replace("%", "%%")
    if not program:
        escaped = escaped.replace("$", "$$")
    if not escaped or any(c.isspace() or c in "\"'\\;" for c in escaped):
        return _quote(escaped)
    return escaped


def exec_line(argv: list[str]) -> str:
    if not os.path.isabs(argv[0]):
        raise ConfigError(f"unit commands need an absolute program path, got {argv[0]!r}")
    return " ".join(exec_word(w, program=i == 0) for i, w in enumerate(argv))


def _exec_agent_line(python: str, verb: str) -> str:
    """`%i` must stay a live specifier, so it is appended after escaping the rest."""
    return exec_line([python, "-m", "mosaic.unitexec", verb]) + " %i"


def environment_line(key: str, value: str) -> str:
    """`Environment="K=V"`: always quoted, so spaces in PATH or paths cannot split it."""
    _reject_control(value, f"environment variable {key}")
    return "Environment=" + _quote(f"{key}={value}".replace("%", "%%"))


def _seconds(value: float) -> str:
    return f"{value:g}s"


# --- units ---------------------------------------------------------------------------------


def render_holder(ctx: UnitContext) -> str:
    """The private tmux server, in the foreground (`-D`), as the unit's main process.

    A tmux server forked by some agent's tmux client would land in that agent unit's cgroup
    and die with it; run here, every pane (and so every runtime) lives in this unit's cgroup
    and systemd supervises the real server process. The first ExecStartPost loop holds the
    unit in `activating` until the server answers on its socket, so units ordered After= it
    (the agents) never race the socket's creation; TimeoutStartSec bounds the wait.

    Restart=always: a server that crashed or was sent `kill-server` comes back (an explicit
    stop is never restarted). Its agents were stopped with it (BindsTo=), so the second
    ExecStartPost (`unitexec revive`, failure ignored) queues a start for each agent that
    was lost that way; agents someone stopped stay stopped.
    """
    ready_probe = exec_line(
        [
            "/bin/sh",
            "-c",
            'until "$0" -L "$1" list-sessions >/dev/null 2>&1; do sleep 0.05; done',
            ctx.tmux,
            ctx.socket,
        ]
    )
    lines = [
        HEADER.rstrip("\n"),
        "[Unit]",
        "Description=mosaic fleet: private tmux server (socket "
        + ctx.socket.replace("%", "%%")
        + ")",
        f"StartLimitIntervalSec={ctx.start_limit_interval_sec}",
        f"StartLimitBurst={ctx.start_limit_burst}",
        "",
        "[Service]",
        "Type=simple",
        *(environment_line(k, v) for k, v in ctx.environment()),
        "ExecStart=" + exec_line([ctx.tmux, "-L", ctx.socket, "-f", ctx.tmux_conf, "-D"]),
        "ExecStartPost=" + ready_probe,
        "ExecStartPost=-" + exec_line([ctx.python, "-m", "mosaic.unitexec", "revive"]),
        "Restart=always",
        f"RestartSec={_seconds(ctx.restart_sec)}",
        "TimeoutStartSec=30s",
        # Stopping the holder ends every pane: the default KillMode=control-group is the
        # point (agents are ordered After= it, so they are stopped first, gracefully).
        "KillMode=control-group",
        f"TimeoutStopSec={ctx.stop_timeout_sec}s",
        "",
        "[Install]",
        f"WantedBy={WANTED_BY}",
        "",
    ]
    return "\n".join(lines)


def render_agent_template(ctx: UnitContext) -> str:
    """One agent per instance; `%i` is the agent (and tmux session) name.

    The runtime itself lives in the holder's cgroup (it is a pane of the tmux server); this
    unit's main process is only a small waiter that exits with the runtime's status, so
    `Restart=` reacts to the runtime. Hence KillMode=mixed: SIGTERM reaches the waiter only,
    after ExecStop= has stopped the pane's process tree gracefully, and any straggler (a stuck
    tmux client) is SIGKILLed. BindsTo= stops the agent when the server dies; the start limit
    in [Unit] turns a crash loop into `failed` instead of restarting forever. Type=notify:
    `mosaic.unitexec run` says READY only once the runtime's pane exists (then execs the
    waiter in the same process), so `systemctl start` returns when the agent is up and fails
    when it could not be launched, instead of succeeding on a mere fork.
    """
    lines = [
        HEADER.rstrip("\n"),
        "[Unit]",
        "Description=mosaic fleet agent %i",
        f"BindsTo={HOLDER_UNIT}",
        f"After={HOLDER_UNIT}",
        f"StartLimitIntervalSec={ctx.start_limit_interval_sec}",
        f"StartLimitBurst={ctx.start_limit_burst}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        *(environment_line(k, v) for k, v in ctx.environment()),
        "ExecStart=" + _exec_agent_line(ctx.python, "run"),
        "ExecStop=" + _exec_agent_line(ctx.python, "stop"),
        "Restart=on-failure",
        # `unitexec run` exits EX_CONFIG when the roster no longer names the agent (or is
        # broken): restarting cannot cure that, so the unit fails once, visibly.
        f"RestartPreventExitStatus={int(ExitCode.CONFIG_UNIT)}",
        f"RestartSec={_seconds(ctx.restart_sec)}",
        "KillMode=mixed",
        f"TimeoutStopSec={ctx.stop_timeout_sec}s",
        "",
        "[Install]",
        f"WantedBy={WANTED_BY}",
        "",
    ]
    return "\n".join(lines)


def render_watcher(ctx: UnitContext) -> str:
    """The fleet's watcher (events, notifications, activity times), as the unit's main
    process. Bound to the holder like the agents: it reads the holder's tmux server, so it
    stops with it and starts after it. Restart=always: killed by anything but a stop, it
    comes back after RestartSec. SIGTERM is its clean stop (it hands pending events to
    their notifications first)."""
    lines = [
        HEADER.rstrip("\n"),
        "[Unit]",
        "Description=mosaic fleet: watcher (socket " + ctx.socket.replace("%", "%%") + ")",
        f"BindsTo={HOLDER_UNIT}",
        f"After={HOLDER_UNIT}",
        f"StartLimitIntervalSec={ctx.start_limit_interval_sec}",
        f"StartLimitBurst={ctx.start_limit_burst}",
        "",
        "[Service]",
        "Type=simple",
        *(environment_line(k, v) for k, v in ctx.environment()),
        "ExecStart=" + exec_line([ctx.python, "-m", "mosaic.watch"]),
        "Restart=always",
        f"RestartSec={_seconds(ctx.restart_sec)}",
        f"TimeoutStopSec={ctx.stop_timeout_sec}s",
        "",
        "[Install]",
        f"WantedBy={WANTED_BY}",
        "",
    ]
    return "\n".join(lines)


def render_agent_dropin(agent: Agent) -> str:
    """Per-instance overrides from the roster: only what differs between agents."""
    return f"{HEADER}[Service]\nRestart={RESTART_VALUES[agent.restart]}\n"


def render_all(ctx: UnitContext, roster: Roster, unit_dir: Path) -> dict[Path, str]:
    """Every file `install` owns for this roster, keyed by path (insertion order is stable)."""
    files = {
        unit_dir / HOLDER_UNIT: render_holder(ctx),
        unit_dir / AGENT_TEMPLATE: render_agent_template(ctx),
        unit_dir / WATCHER_UNIT: render_watcher(ctx),
    }
    for agent in roster.local_agents:  # a host's agents get their units there
        files[dropin_path(unit_dir, agent.name)] = render_agent_dropin(agent)
    return files
