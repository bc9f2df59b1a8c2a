"""Bringing an agent's runtime up as the process of its own tmux session.

The runtime is the pane's own process: tmux execs the argv directly, no shell in between,
so `pane_pid` is the runtime's pid and a dead pane means a dead runtime. Both supervisors
launch through here (the tmux supervisor from the CLI and its respawn hook, systemd from
the agent unit). Every roster value reaches tmux as one literal argument: none can end
the tmux command or be expanded as a format.
"""

from __future__ import annotations

import os
from pathlib import Path

from mosaic.agents.teardown import kill_session
from mosaic.config import programs
from mosaic.config.paths import Paths
from mosaic.config.roster import Agent, Roster
from mosaic.config.runtimes import Runtime
from mosaic.errors import ConfigError, TmuxError
from mosaic.tmux import server, transcript
from mosaic.tmux.client import Tmux, format_literal, literal
from mosaic.tmux.panes import Pane, int_or_zero, list_panes


def resolve_program(runtime: Runtime, agent: Agent) -> str | None:
    search = programs.search_path(agent.env_dict.get("PATH"), os.environ)
    return programs.find(runtime.program, search)


def workdir_of(agent: Agent) -> Path:
    return agent.workdir if agent.workdir is not None else Path.home()


def preflight(roster: Roster, agents: list[Agent]) -> None:
    """Check tmux and every agent before anything starts, so a bad one leaves nothing
    half-started."""
    server.require_tmux()
    problems = []
    for agent in agents:
        runtime = roster.runtime_for(agent)
        workdir = workdir_of(agent)
        if not workdir.is_dir():
            problems.append(f"agent {agent.name}: workdir {workdir} does not exist")
        program = resolve_program(runtime, agent)
        if program is None:
            problems.append(
                f"agent {agent.name}: program {runtime.program!r} of runtime "
                f"{runtime.name!r} not found on PATH"
            )
        elif agent.env and "=" in program:
            # env(1) would read it as one more NAME=VALUE (see argv_of).
            problems.append(
                f"agent {agent.name}: program path {program!r} contains '=', which cannot "
                "be run with the agent's env: move or link it to a path without '='"
            )
    if problems:
        raise ConfigError("\n".join(problems))


ENV_PROGRAM = "env"
ENV_SEARCH = "/usr/bin:/bin"


def argv_of(roster: Roster, agent: Agent) -> list[str]:
    """The pane's command line: the runtime's, behind env(1) when the agent sets variables.

    tmux builds a new pane's environment from the session's (`-e`), then overwrites PATH with
    the PATH of the tmux client that asked for the pane (the `mosaic` process, or the hook
    that respawns it) and TERM, SHELL, TMUX, TMUX_PANE with its own; so every roster `env`
    key is also set by env(1), which then execs the runtime in the same process (pane_pid
    stays the runtime's pid) and survives any respawn of the pane.
    """
    runtime = roster.runtime_for(agent)
    program = resolve_program(runtime, agent) or runtime.program
    argv = [program, *runtime.command[1:], *agent.args]
    if not agent.env:
        return argv
    env = programs.find(ENV_PROGRAM, ENV_SEARCH) or ENV_PROGRAM
    return [env, *(f"{key}={value}" for key, value in agent.env), *argv]


def launch(tmux: Tmux, paths: Paths, roster: Roster, agent: Agent, pane: Pane | None) -> Pane:
    """Create the agent's session (replacing a dead one, so roster edits take effect)."""
    if pane is not None and not pane.dead:
        return pane
    if pane is not None:
        kill_session(tmux, agent.name)
    env_args: list[str] = []
    for key, value in agent.env:
        env_args += ["-e", literal(f"{key}={value}")]
    try:
        out = tmux.out(
            "new-session", "-d", "-s", agent.name,
            "-x", str(server.WIDTH), "-y", str(server.HEIGHT),
            "-c", literal(format_literal(str(workdir_of(agent)))), *env_args,
            "-P", "-F", "#{pane_id}\x1f#{pane_pid}",
            "--", *map(literal, argv_of(roster, agent)),
        )  # fmt: skip
    except TmuxError as exc:
        if "duplicate session" not in exc.message:
            raise
        # A concurrent `start` won the race; its session is ours too.
        current = (list_panes(tmux) or {}).get(agent.name)
        if current is None:
            raise
        return current
    pane_id, _, pid = out.strip().partition("\x1f")
    transcript.attach(tmux, paths, agent.name, pane_id)
    return Pane(agent.name, pane_id, int_or_zero(pid), "", False)
