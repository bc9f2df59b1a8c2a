"""What the `mosaic-agent@NAME.service` units run: `python -m mosaic.unitexec run|stop NAME`.

`run` brings the agent's pane up on the holder's tmux server, tells systemd it is ready
(Type=notify) and then execs a tiny POSIX-sh waiter in the same process, so the unit's main
process costs a shell and a `tail` (about 2 MiB), not a resident Python. The waiter exits
when the runtime does, with a status systemd's `Restart=` can act on: 0 when the operator
asked for the stop (a requested stop must never mark the unit failed), otherwise the
runtime's own exit status, 128+N for death by signal N, and 1 when tmux lost the status.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from mosaic import roster as roster_mod
from mosaic import session, state, systemctl, units
from mosaic.errors import MosaicError, OperationFailed, UnknownAgentError
from mosaic.paths import Paths, resolve
from mosaic.roster import Agent, Roster
from mosaic.runtimes import UNKNOWN, Runtime
from mosaic.state import AgentState
from mosaic.tmux import Tmux, tmux_binary

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = units.EXIT_CONFIG  # the agent unit's RestartPreventExitStatus=
# How often the waiter's `tail --pid` looks for the runtime: the upper bound on how late
# systemd hears of a normal exit. A wake-up of a small C program per agent at this rate is
# noise. tmux 3.3a now and then leaves a dead runtime unreaped (a zombie, which `kill -0`,
# and so `tail --pid`, still counts as alive): every ZOMBIE_CHECK_S the waiter also reads
# the process state itself, so such a death is noticed within that bound instead of never.
POLL_S = "0.5"
ZOMBIE_CHECK_S = "2"

# The waiter. Positional args: tmux, socket, pane id, runtime pid, state record, poll and
# zombie-check intervals. `read` from /proc is a shell builtin, so the check forks nothing.
# After the runtime is gone, tmux needs a moment to mark the pane dead; the status is read
# from tmux because the runtime was never our child.
WAITER = r"""
tmux="$1"; sock="$2"; pane="$3"; pid="$4"; rec="$5"
while read -r st < "/proc/$pid/stat"; do
  case "${st##*) }" in Z*|X*) break ;; esac
  timeout "$7" tail -s "$6" --pid="$pid" -f /dev/null || [ "$?" = 124 ] || break
done 2>/dev/null
stopped() { grep -q '"desired": "stopped"' "$rec" 2>/dev/null; }
stopped && exit 0
i=0
while :; do
  s=$("$tmux" -L "$sock" display-message -p -t "$pane" \
      '#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}' 2>/dev/null) || s=gone
  case "$s" in 1:*|gone) break ;; esac
  i=$((i + 1))
  [ "$i" -ge 40 ] && break
  sleep 0.05
done
stopped && exit 0
case "$s" in 1:*) ;; *) exit 1 ;; esac
rest=${s#1:}; code=${rest%%:*}; sig=${rest#*:}
case "$sig" in ''|0|*[!0-9]*) ;; *) exit $((128 + sig)) ;; esac
case "$code" in ''|*[!0-9]*) exit 1 ;; esac
exit "$code"
"""


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
        sock = roster_mod.effective_socket(_load(paths), env)
    return Context(paths, sock, session.make_tmux(paths, sock))


def _load(paths: Paths) -> Roster:
    return roster_mod.load(paths.roster, cache_dir=paths.run)


def waiter_argv(ctx: Context, pane: session.Pane) -> list[str]:
    record = state.record_path(ctx.paths, pane.session)
    return ["/bin/sh", "-c", WAITER, "mosaic-waiter", tmux_binary(), ctx.socket, pane.id,
            str(pane.pid), str(record), POLL_S, ZOMBIE_CHECK_S]  # fmt: skip


def _arm(agent: Agent, now: float) -> Callable[[AgentState], AgentState]:
    """A start: what `status` and the pane-died hook read. Restarts are systemd's count."""

    def change(s: AgentState) -> AgentState:
        return replace(
            s, desired="running", generation=s.generation + 1, failed=False, crash_streak=0,
            respawn_due=None, started_at=now, pid=None, restart_policy=agent.restart,
            holder_lost=False,
        )  # fmt: skip

    return change


def bring_up(ctx: Context, roster: Roster, agent: Agent) -> session.Pane:
    """Launch the agent's pane, or adopt a live one (systemd restarting only the waiter)."""
    session.preflight(roster, [agent])
    if not ctx.tmux.server_running():
        raise OperationFailed(
            f"the fleet's tmux server (socket {ctx.socket}) is not answering; "
            "it is run by mosaic-tmux-holder.service"
        )
    session.publish_hook_environment(ctx.tmux, ctx.paths, "systemd")
    pane = (session.list_panes(ctx.tmux) or {}).get(agent.name)
    if pane is None or pane.dead:
        state.update(ctx.paths, agent.name, _arm(agent, time.time()))
    else:
        state.update(
            ctx.paths, agent.name, lambda s: replace(s, desired="running", holder_lost=False)
        )
    new = session.launch(ctx.tmux, ctx.paths, roster, agent, pane)
    state.update(ctx.paths, agent.name, lambda s: replace(s, pid=new.pid))
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
        return EXIT_CONFIG
    pane = bring_up(ctx, roster, agent)
    argv = waiter_argv(ctx, pane)
    notify_ready(env, pane.pid)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return EXIT_FAILED  # not reached


def stop(name: str, env: Mapping[str, str]) -> int:
    """ExecStop=, also run by systemd after the runtime ended by itself ($EXIT_CODE set).

    Only an operator's stop (the waiter still alive, the server up) marks the agent stopped
    and ends its tree; after a runtime's own exit the dead pane is left for `capture` and for
    the next `run` to replace, and a runtime whose waiter alone was killed keeps running to
    be adopted by the restarted unit. Without a server, the holder was lost (see module doc).
    """
    ctx = context(env)
    panes = session.list_panes(ctx.tmux)
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
    session.kill_tree(ctx.tmux, pane, runtime)
    session.kill_session(ctx.tmux, name)
    return 0


def _lost(s: AgentState) -> AgentState:
    return replace(s, holder_lost=s.desired == "running")


def revive(env: Mapping[str, str]) -> int:
    """The holder's ExecStartPost: queue a start for every roster agent the holder's loss
    stopped (`--no-block`: they are ordered after the holder, which is still starting)."""
    ctx = context(env)
    lost = [
        a.name
        for a in _load(ctx.paths).agents
        if (record := state.read(ctx.paths, a.name)).holder_lost and record.desired == "running"
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
    if len(argv) != 2 or argv[0] not in ("run", "stop"):
        print(f"usage: python -m mosaic.unitexec run|stop AGENT | revive (got {argv})",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    verb, name = argv
    try:
        return run(name, env) if verb == "run" else stop(name, env)
    except MosaicError as exc:
        print(f"mosaic-agent@{name}: {verb}: {exc.message}", file=sys.stderr)
        if verb == "run" and exc.exit_code == EXIT_USAGE:
            return EXIT_CONFIG  # a broken roster: restarting will not mend it
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
