"""The roster model (docs/reference.md, "Roster"): the typed, validated view of roster.yaml.

Values only; reading is `config.load`, checking `config.checker`, editing `config.rosteredit`.

Decisions the contract leaves open, made here:
- `defaults:` accepts `workdir`, `env` and `restart`; `args` is per agent because it is
  appended to a runtime-specific command.
- `env` values and `args` items must be strings; a plain decimal integer (`PORT: 8080`) is
  accepted and converted to its digits. Booleans, floats, nulls and non-decimal integers are
  rejected with a hint to quote them, since their text would not survive YAML unchanged.
- A relative `workdir` is taken relative to the roster file's directory, so the roster means
  the same thing whichever directory a command runs from. `~` and `$VARS` are expanded at load;
  an unset variable is a problem; the directory's existence is checked at start.
- An empty `agents:` (or none) is a valid, empty fleet.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mosaic.config import programs
from mosaic.config.names import SOCKET_PATTERN
from mosaic.config.runtimes import Runtime
from mosaic.errors import ConfigError, UnknownAgentError


class RestartPolicy(StrEnum):
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"


class Supervisor(StrEnum):
    """Who keeps the agents alive; `auto` is resolved once, when the fleet starts."""

    AUTO = "auto"
    SYSTEMD = "systemd"
    TMUX = "tmux"


RESTART_POLICIES = tuple(str(p) for p in RestartPolicy)
SUPERVISORS = tuple(str(s) for s in Supervisor)
TRANSPORTS = ("tmux",)
PROFILES = ("generic", "codex", "claude", "gemini", "opencode", "aider")
DEFAULT_SOCKET = "mosaic"
SUPPORTED_VERSION = 1

TOP_KEYS = (
    "version", "transport", "supervisor", "tmux_socket", "defaults", "agents", "runtimes",
    "notify", "hosts",
)  # fmt: skip
AGENT_KEYS = ("name", "runtime", "workdir", "args", "env", "restart", "stuck_after", "host")
HOST_KEYS = ("ssh", "port", "identity", "home")
DEFAULTS_KEYS = ("workdir", "env", "restart", "stuck_after")
NOTIFY_KEYS = ("on", "agents", "command", "webhook", "desktop")
NOTIFY_KINDS = ("command", "webhook", "desktop")
# Seconds busy before a `stuck` event; 0 turns it off.
DEFAULT_STUCK_AFTER_S = 900.0
RUNTIME_KEYS = (
    "command",
    "processes",
    "ready",
    "busy",
    "approval",
    "queued",
    "profile",
    "submit_key",
    "quit_keys",
    "paste_window_ms",
    "approve_keys",
    "deny_keys",
    "debounce_ms",
)
REGEX_KEYS = ("ready", "busy", "approval", "queued")

SOCKET_ENV = "MOSAIC_TMUX_SOCKET"
SUPERVISOR_ENV = "MOSAIC_FLEET_SUPERVISOR"


@dataclass(frozen=True)
class Agent:
    name: str
    runtime: str
    # ~ and $VARS already expanded; existence is checked at start, not at load.
    workdir: Path | None = None
    args: tuple[str, ...] = ()
    # defaults.env merged under the agent's own env.
    env: tuple[tuple[str, str], ...] = ()
    restart: RestartPolicy = RestartPolicy.ON_FAILURE
    stuck_after: float = DEFAULT_STUCK_AFTER_S
    # The roster host it runs on (docs/hosts.md); None is this machine. A remote agent's
    # workdir is None here: it is the host's to expand, from the roster text sent there.
    host: str | None = None

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True)
class NotifyTarget:
    """One `notify:` entry: which events (and agents) it wants, and exactly one way to tell.

    `agents` empty means every agent (and fleet events, whose agent is null)."""

    on: tuple[str, ...]
    agents: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    webhook: str | None = None
    desktop: bool = False

    @property
    def label(self) -> str:
        """How `notify_failed` names this target."""
        if self.command:
            return "command: " + " ".join(self.command)
        if self.webhook:
            return "webhook: " + self.webhook
        return "desktop"


@dataclass(frozen=True)
class Host:
    """A machine reached over SSH that supervises its own agents (docs/hosts.md)."""

    name: str
    ssh: str  # `[user@]host`, validated: never read as an ssh option
    port: int | None = None
    identity: Path | None = None  # expanded here: the key is read by the local ssh
    home: str | None = None  # a path on the host, expanded there; None: the host's default


@dataclass(frozen=True)
class Roster:
    path: Path
    version: int = 1
    transport: str = "tmux"
    supervisor: Supervisor = Supervisor.AUTO
    tmux_socket: str = DEFAULT_SOCKET
    agents: tuple[Agent, ...] = ()
    # Built-ins merged with the roster's custom runtimes; a custom runtime may not reuse a
    # built-in name (validation rejects it), so there is never a clash to resolve.
    runtimes: dict[str, Runtime] = field(default_factory=dict, compare=False, hash=False)
    notify: tuple[NotifyTarget, ...] = ()
    hosts: tuple[Host, ...] = ()

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.agents]

    def agent(self, name: str) -> Agent:
        for a in self.agents:
            if a.name == name:
                return a
        raise UnknownAgentError(name, self.names)

    def runtime_for(self, agent: Agent) -> Runtime:
        return self.runtimes[agent.runtime]

    def select(self, name: str | None) -> list[Agent]:
        """One named agent (unknown is a usage error) or the whole fleet."""
        return [self.agent(name)] if name else list(self.agents)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)  # the checker makes every agent's host a declared one

    @property
    def local_agents(self) -> list[Agent]:
        return [a for a in self.agents if a.host is None]



# --------------------------------------------------------------------------- overrides


def effective_socket(roster: Roster, env: Mapping[str, str] | None = None) -> str:
    """$MOSAIC_TMUX_SOCKET wins over the roster, with the same name rules."""
    env = os.environ if env is None else env
    value = env.get(SOCKET_ENV)
    if not value:
        return roster.tmux_socket
    if not re.fullmatch(SOCKET_PATTERN, value):
        raise ConfigError(
            f"${SOCKET_ENV}={value!r} is not a valid tmux socket name "
            f"(letters, digits, '_', '.', '-'; at most 64; not starting with '.' or '-')"
        )
    return value


def effective_supervisor(roster: Roster, env: Mapping[str, str] | None = None) -> Supervisor:
    """$MOSAIC_FLEET_SUPERVISOR wins over the roster."""
    env = os.environ if env is None else env
    value = env.get(SUPERVISOR_ENV)
    if not value:
        return roster.supervisor
    if value not in SUPERVISORS:
        raise ConfigError(
            f"${SUPERVISOR_ENV}={value!r} is not a supervisor; "
            f"expected one of: {', '.join(SUPERVISORS)}"
        )
    return Supervisor(value)


def program_uses(roster: Roster) -> list[programs.Use]:
    """What each agent needs installed: its runtime's program, looked up on its own PATH
    when its env sets one."""
    return [
        (roster.runtime_for(a).program, a.runtime, a.name, a.env_dict.get("PATH"))
        for a in roster.local_agents  # a remote agent's program is its host's to find
    ]

