"""Which machine each agent's command goes to, and asking all of them at once.

Every fleet command goes through here, the same way (docs/hosts.md, "Adding a command"):

1. `split` (or `part_of` for one agent) groups the agents it acts on by machine: this one
   first, then the roster's hosts in roster order. A roster without hosts is one local
   part, so a single-machine fleet runs exactly the code it always ran.
2. `each` runs a `local` function on the local part (the library, in this process) and a
   `remote` function on every host's part (`mosaic fleet ...` there, through `Remote`), in
   parallel, at most `parallelism()` hosts at a time, and returns one `Done` per part in
   part order, a failure of one host never stopping the others.
3. The command merges the `Done`s (`hosts.merge`) and exits with the `worst` code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mosaic.config.names import LOCAL_HOST
from mosaic.config.paths import Paths
from mosaic.config.roster import Agent, Host, Roster
from mosaic.errors import ConfigError, ExitCode, MosaicError
from mosaic.hosts.remote import Remote
from mosaic.hosts.ssh import Link

T = TypeVar("T")

PARALLEL_ENV = "MOSAIC_FLEET_HOSTS_PARALLEL"
DEFAULT_PARALLEL = 16
# Exit codes of a merged command, best first: a host that could not act (1) outranks one
# whose agent did not confirm (3); a configuration error anywhere (2) outranks both.
RANK = (ExitCode.OK, ExitCode.NOT_ACCEPTED, ExitCode.FAILED, ExitCode.USAGE)


@dataclass(frozen=True)
class Part:
    """The agents of one command that live on one machine (`host` None: this one)."""

    host: Host | None
    agents: tuple[Agent, ...]

    @property
    def name(self) -> str:
        return self.host.name if self.host is not None else LOCAL_HOST

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.agents]


def split(
    roster: Roster,
    agents: Sequence[Agent],
    *,
    every_host: bool = False,
    this_machine: bool = False,
) -> list[Part]:
    """`agents` grouped by machine. This machine is a part when one of them is local, when
    the roster declares no hosts (an empty fleet is still a local one), or when
    `this_machine` says so (a whole-fleet `start` starts the watcher here too). `every_host`
    adds declared hosts none of `agents` is on: a whole-fleet `stop` or `status` reaches
    every host, also one whose agents have all left the roster."""
    local = tuple(a for a in agents if a.host is None)
    parts = []
    if local or not roster.hosts or this_machine:
        parts.append(Part(None, local))
    for host in roster.hosts:
        mine = tuple(a for a in agents if a.host == host.name)
        if mine or every_host:
            parts.append(Part(host, mine))
    return parts


def part_of(roster: Roster, agent: Agent) -> Part:
    return Part(None if agent.host is None else roster.host(agent.host), (agent,))


def remote_for(paths: Paths, roster: Roster, agent_name: str) -> Remote | None:
    """Where a one-agent command goes: None for this machine, else the agent's host.
    An unknown name is a usage error naming the known agents."""
    agent = roster.agent(agent_name)
    return None if agent.host is None else remote(paths, roster.host(agent.host))


def remote(paths: Paths, host: Host, env: Mapping[str, str] | None = None) -> Remote:
    """`env`: the environment ssh runs with, when it is not this process's (`ssh.Link`)."""
    return Remote(Link(host, paths.ssh_dir, env))


def parallelism(env: Mapping[str, str] | None = None) -> int:
    """How many hosts are asked at once ($MOSAIC_FLEET_HOSTS_PARALLEL, default 16)."""
    raw = (os.environ if env is None else env).get(PARALLEL_ENV, "")
    if not raw:
        return DEFAULT_PARALLEL
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"${PARALLEL_ENV} must be a whole number >= 1, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Done(Generic[T]):
    """One part's outcome: its value, or the error that stopped it."""

    part: Part
    value: T | None
    error: MosaicError | None
    seconds: float


def each(
    paths: Paths,
    parts: Sequence[Part],
    local: Callable[[Part], T],
    remote_fn: Callable[[Remote, Part], T],
    env: Mapping[str, str] | None = None,
) -> list[Done[T]]:
    """Run the command's part on every machine at once; results in `parts` order. `env`:
    the caller's environment when it is not this process's (the watcher serving a
    command, `watch/serve.py`)."""

    def run(part: Part) -> Done[T]:
        t0 = time.monotonic()
        try:
            host = part.host
            value = local(part) if host is None else remote_fn(remote(paths, host, env), part)
        except MosaicError as exc:
            return Done(part, None, exc, time.monotonic() - t0)
        return Done(part, value, None, time.monotonic() - t0)

    if len(parts) == 1:
        return [run(parts[0])]  # one machine: no thread to pay for
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(parallelism(env), len(parts))) as pool:
        return list(pool.map(run, parts))


def worst(codes: Sequence[int]) -> int:
    """The exit code of a merged command: the worst by `RANK` (others count as failures)."""
    ranked = [ExitCode(c) if c in RANK else ExitCode.FAILED for c in codes]
    return int(max(ranked, key=RANK.index, default=ExitCode.OK))


class PartsFailed(MosaicError):
    """Some machines failed their part; the message lists each failure."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)


def raise_failures(done: Sequence[Done[T]]) -> None:
    """After the successes are printed: one error naming every failed part, if any."""
    raise_errors([d.error for d in done if d.error is not None])


def raise_errors(errors: Sequence[MosaicError]) -> None:
    """One error naming every failure, with the worst exit code; nothing when none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise PartsFailed(
            "\n".join(e.message for e in errors), worst([int(e.exit_code) for e in errors])
        )
