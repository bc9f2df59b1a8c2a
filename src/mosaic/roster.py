"""Roster v1 (SPEC §4): the typed, validated view of roster.yaml.

Only the value types live here for now; loading and validation arrive with the roster work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mosaic.errors import UnknownAgentError
from mosaic.runtimes import Runtime

RESTART_POLICIES = ("always", "on-failure", "never")
SUPERVISORS = ("auto", "systemd", "tmux")
DEFAULT_SOCKET = "mosaic"


@dataclass(frozen=True)
class Agent:
    name: str
    runtime: str
    # ~ and $VARS already expanded; existence is checked at start, not at load.
    workdir: Path | None = None
    args: tuple[str, ...] = ()
    # defaults.env merged under the agent's own env.
    env: tuple[tuple[str, str], ...] = ()
    restart: str = "on-failure"

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True)
class Roster:
    path: Path
    version: int = 1
    transport: str = "tmux"
    supervisor: str = "auto"
    tmux_socket: str = DEFAULT_SOCKET
    agents: tuple[Agent, ...] = ()
    # Built-ins merged with the roster's custom runtimes (custom ones win on name clash? no:
    # a custom runtime may not reuse a built-in name; validation rejects it).
    runtimes: dict[str, Runtime] = field(default_factory=dict, compare=False, hash=False)

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
