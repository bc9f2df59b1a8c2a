"""What the systemd units run: `python -m mosaic.unitexec run|stop|exited AGENT | revive`.

`run` brings the agent's pane up on the holder's tmux server, tells systemd it is ready
(Type=notify) and then execs a tiny POSIX-sh waiter in the same process, so the unit's main
process costs a shell and a `tail` (about 2 MiB), not a resident Python. When the runtime
ends, the waiter execs `exited`, still the unit's main process, which reads the agent's
record and the pane and exits with a status systemd's `Restart=` can act on: 0 when the
operator asked for the stop (a requested stop must never mark the unit failed), otherwise
the runtime's own exit status, 128+N for death by signal N, and 1 when tmux lost it.

`stop` is ExecStop=: it marks the agent stopped and ends the pane's whole process tree
gracefully. It needs nothing from the roster beyond the runtime's quit keys, so it copes
with a unit left running for an agent since removed from the roster. When the tmux server
is already gone, the stop is the holder's loss reaching the agent (BindsTo=), not anyone's
wish: the agent is marked `holder_lost` instead, and `revive` (the holder's ExecStartPost)
starts such agents again once the server is back.

The tmux server is never started from here: a server forked from an agent unit would land
in that unit's cgroup and die with it. It belongs to `mosaic-tmux-holder.service`.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from mosaic.agents import state
from mosaic.agents.launch import launch, preflight
from mosaic.agents.settings import effective
from mosaic.agents.state import AgentState, Desired
from mosaic.agents.teardown import kill_session, kill_tree
from mosaic.config.eventtypes import EventType
from mosaic.config.load import load
from mosaic.config.names import is_agent_name
from mosaic.config.paths import Paths, resolve
from mosaic.config.roster import Agent, RestartPolicy, Roster, effective_socket
from mosaic.config.runtimes import UNKNOWN, Runtime
from mosaic.errors import ExitCode, MosaicError, OperationFailed, UnknownAgentError
from mosaic.store import events
from mosaic.supervise.systemd import systemctl, units
from mosaic.supervise.tmux.backoff import exit_code
from mosaic.tmux.client import SEP, Tmux
from mosaic.tmux.panes import Pane, list_panes
from mosaic.tmux.server import make_tmux, publish_hook_environment

# How often the waiter's `tail --pid` looks for the runtime: the upper bound on how late
# systemd hears of a normal exit. A wake-up of a small C program per agent at this rate is
# noise. tmux 3.3a now and then leaves a dead runtime unreaped (a zombie, which `kill -0`,
# and so `tail --pid`, still counts as alive): every ZOMBIE_CHECK_S the waiter also reads
# the process state itself, so such a death is noticed within that bound instead of never.
POLL_S = "0.5"
ZOMBIE_CHECK_S = "2"

# The waiter. Positional args: runtime pid, poll and zombie-check intervals, then the argv
# to exec once the runtime is gone (`python -m mosaic.unitexec exited AGENT PANE`). `read`
# from /proc is a shell builtin, so the check forks nothing.
WAITER = r"""
pid="$1"; poll="$2"; zcheck="$3"; shift 3
while read -r st < "/proc/$pid/stat"; do
  case "${st##*) }" in Z*|X*) break ;; esac
  timeout "$zcheck" tail -s "$poll" --pid="$pid" -f /dev/null || [ "$?" = 124 ] || break
done 2>/dev/null
exec "$@"
"""
# After the runtime is gone, tmux needs a moment to mark the pane dead and keep its status;
# when tmux 3.3a leaves the process unreaped, only the server's next tick (every 2 s,
# docs/architecture.md "The tick") makes it do so: wait through more than one tick.
PANE_DEAD_WAIT_S = 5.0


@dataclass(frozen=True)
class Context:
    paths: Paths
    socket: str
    tmux: Tmux


def context(env: Mapping[str, str]) -> Context:
    """Paths and socket exactly as the unit carries them (MOSAIC_HOME, MOSAIC_TMUX_SOCKET)."""
    paths = resolve(env=dict(env))
    sock = env.get("MOSAIC_TMUX_SOCKET")
    if not sock:
        sock = effective_socket(_load(paths), env)
    return Context(paths, sock, make_tmux(paths, sock))


def _load(paths: Paths) -> Roster:
    return load(paths.roster, cache_dir=paths.run)


def waiter_argv(pane: Pane) -> list[str]:
    then = [sys.executable, "-m", "mosaic.unitexec", "exited", pane.session, pane.id]
    return ["/bin/sh", "-c", WAITER, "mosaic-waiter", str(pane.pid), POLL_S, ZOMBIE_CHECK_S,
            *then]  # fmt: skip


def bring_up(ctx: Context, roster: Roster, agent: Agent) -> Pane:
    """Launch the agent's pane, or adopt a live one (systemd restarting only the waiter)."""
    preflight(roster, [agent])
    if not ctx.tmux.server_running():
        raise OperationFailed(
            f"the fleet's tmux server (socket {ctx.socket}) is not answering; "
            "it is run by mosaic-tmux-holder.service"
        )
    publish_hook_environment(ctx.tmux, ctx.paths)
    pane = (list_panes(ctx.tmux) or {}).get(agent.name)
    if pane is None or pane.dead:
        # Restarts are systemd's count; `status` reads it from the unit.
        state.update(
            ctx.paths, agent.name, state.armed(agent, time.time(), effective(roster, agent))
        )
    else:
        state.update(
            ctx.paths,
            agent.name,
            lambda s: replace(s, desired=Desired.RUNNING, holder_lost=False),
        )
    new = launch(ctx.tmux, ctx.paths, roster, agent, pane)
    state.update(ctx.paths, agent.name, lambda s: replace(s, pid=new.pid))
    if pane is None or pane.dead:
        events.record(ctx.paths.db, [events.draft(agent.name, EventType.STARTED, pid=new.pid)])
    return new


def notify_ready(env: Mapping[str, str], pid: int) -> None:
    """sd_notify(READY=1) without libsystemd: one datagram to $NOTIFY_SOCKET."""
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(f"READY=1\nSTATUS=runtime pid {pid}\n".encode())


def run(name: str, env: Mapping[str, str]) -> int:
    ctx = context(env)
    roster = _load(ctx.paths)
    try:
        agent = roster.agent(name)
    except UnknownAgentError as exc:
        print(f"mosaic-agent@{name}: {exc.message}; run `mosaic fleet install` to "
              "update the units", file=sys.stderr)  # fmt: skip
        return ExitCode.CONFIG_UNIT
    pane = bring_up(ctx, roster, agent)
    argv = waiter_argv(pane)
    notify_ready(env, pane.pid)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return ExitCode.FAILED  # not reached


def exited(name: str, pane_id: str, env: Mapping[str, str]) -> int:
    """The waiter's last step, once the runtime is gone: the unit's exit status (see the
    module doc), decided from the agent's record and the dead pane's status."""
    ctx = context(env)
    if state.read(ctx.paths, name).desired is Desired.STOPPED:
        return ExitCode.OK
    fmt = SEP.join(("#{pane_dead}", "#{pane_dead_status}", "#{pane_dead_signal}"))
    deadline = time.monotonic() + PANE_DEAD_WAIT_S
    fields: list[str] = []
    while time.monotonic() < deadline:
        proc = ctx.tmux.run("display-message", "-p", "-t", pane_id, fmt, check=False)
        if proc.returncode != 0:
            break  # the pane (or the server) is gone: no status to read
        fields = proc.stdout.decode(errors="replace").rstrip("\n").split(SEP)
        # Dead with a status. tmux 3.3a may show a pane dead with neither status nor signal
        # while the process is still unreaped; the server's tick reaps it and fills them in.
        if fields[:1] == ["1"] and any(fields[1:]):
            break
        time.sleep(0.05)
    # Read again: an operator's stop may have raced the runtime's exit.
    record = state.read(ctx.paths, name)
    if record.desired is Desired.STOPPED:
        return ExitCode.OK
    code = exit_code(fields[1], fields[2]) if len(fields) == 3 and fields[0] == "1" else None
    status = ExitCode.FAILED if code is None else (128 - code if code < 0 else code)
    _record_exit(ctx.paths, name, code, status, record.restart_policy)
    return status


def _record_exit(
    paths: Paths, name: str, code: int | None, status: int, policy: RestartPolicy
) -> None:
    """`exited`, and `restarting` when the unit's Restart= acts on this status (whether
    systemd's start limit then lets it start is reported by the watcher, as `failed`)."""
    happened = [events.draft(name, EventType.EXITED, code=code)]
    if policy is RestartPolicy.ALWAYS or (policy is RestartPolicy.ON_FAILURE and status != 0):
        happened.append(events.draft(name, EventType.RESTARTING, delay_s=units.RESTART_SEC_S))
    events.record(paths.db, happened)


def stop(name: str, env: Mapping[str, str]) -> int:
    """ExecStop=, also run by systemd after the runtime ended by itself ($EXIT_CODE set).

    Only an operator's stop (the waiter still alive, the server up) marks the agent stopped
    and ends its tree; after a runtime's own exit the dead pane is left for `capture` and for
    the next `run` to replace, and a runtime whose waiter alone was killed keeps running to
    be adopted by the restarted unit. Without a server, the holder was lost (see module doc).
    """
    ctx = context(env)
    panes = list_panes(ctx.tmux)
    if panes is None:
        state.update(ctx.paths, name, _lost)
        return 0
    if env.get("EXIT_CODE"):
        return 0
    state.update(ctx.paths, name, state.disarmed)
    runtime = _runtime_of(ctx.paths, name)
    pane = panes.get(name)
    if pane is None:
        return 0
    kill_tree(ctx.tmux, pane, runtime)
    kill_session(ctx.tmux, name)
    events.record(ctx.paths.db, [events.draft(name, EventType.STOPPED)])
    return 0


def _lost(s: AgentState) -> AgentState:
    return replace(s, holder_lost=s.desired is Desired.RUNNING)


def revive(env: Mapping[str, str]) -> int:
    """The holder's ExecStartPost: queue a start for every roster agent the holder's loss
    stopped (`--no-block`: they are ordered after the holder, which is still starting)."""
    ctx = context(env)
    lost = [
        a.name
        for a in _load(ctx.paths).agents
        if (record := state.read(ctx.paths, a.name)).holder_lost
        and record.desired is Desired.RUNNING
    ]
    if lost:
        print(f"reviving agents stopped with the tmux server: {', '.join(lost)}", file=sys.stderr)
        systemctl.start([units.agent_unit(n) for n in lost], no_block=True, env=env)
    return 0


def _runtime_of(paths: Paths, name: str) -> Runtime:
    """The runtime's quit keys when the roster still names the agent; plain signals else."""
    try:
        roster = _load(paths)
        return roster.runtime_for(roster.agent(name))
    except MosaicError:
        return UNKNOWN


def main(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    if argv == ["revive"]:
        try:
            return revive(env)
        except MosaicError as exc:
            print(f"mosaic-tmux-holder: revive: {exc.message}", file=sys.stderr)
            return exc.exit_code
    if argv[:1] == ["exited"] and len(argv) == 3 and is_agent_name(argv[1]):
        try:
            return exited(argv[1], argv[2], env)
        except MosaicError as exc:
            print(f"mosaic-agent@{argv[1]}: exited: {exc.message}", file=sys.stderr)
            return ExitCode.FAILED
    if len(argv) != 2 or argv[0] not in ("run", "stop"):
        print("usage: python -m mosaic.unitexec run|stop|exited AGENT [PANE] | revive "
              f"(got {argv})", file=sys.stderr)  # fmt: skip
        return ExitCode.USAGE
    verb, name = argv
    try:
        return run(name, env) if verb == "run" else stop(name, env)
    except MosaicError as exc:
        print(f"mosaic-agent@{name}: {verb}: {exc.message}", file=sys.stderr)
        if verb == "run" and exc.exit_code == ExitCode.USAGE:
            return ExitCode.CONFIG_UNIT  # a broken roster: restarting will not mend it
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
