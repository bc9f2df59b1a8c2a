"""Agent sessions on the private tmux server: bring one up, look at all, tear one down.

Shared by both supervisors: the tmux supervisor calls these from the CLI and from tmux's
pane-died hook; the systemd units call them from `mosaic.unitexec`. The runtime is the
pane's own process (tmux execs the argv directly, no shell in between), so `pane_pid` is the
runtime's pid and a dead pane means a dead runtime.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from mosaic import procs, programs
from mosaic.errors import ConfigError, OperationFailed, TmuxError
from mosaic.fsutil import atomic_write, ensure_dir
from mosaic.paths import Paths
from mosaic.roster import Agent, Roster
from mosaic.runtimes import Runtime
from mosaic.tmux import MIN_VERSION, Tmux

PANE_FIELDS = (
    "session_name",
    "pane_id",
    "pane_pid",
    "pane_current_command",
    "pane_dead",
    "pane_dead_status",
    "pane_dead_signal",
    "pane_in_mode",
    "cursor_x",
    "cursor_y",
    "pane_width",
)
WIDTH, HEIGHT = 200, 50
# Transcript rotation: <agent>.log grows to this size, then becomes <agent>.log.1, so an
# agent's transcripts never take more than twice this ($MOSAIC_FLEET_LOG_MAX_BYTES).
LOG_MAX_BYTES = 4 * 1024 * 1024


def log_max_bytes() -> int:
    raw = os.environ.get("MOSAIC_FLEET_LOG_MAX_BYTES", "")
    if not raw:
        return LOG_MAX_BYTES
    if not raw.isdigit() or int(raw) < 4096:
        raise ConfigError(
            f"MOSAIC_FLEET_LOG_MAX_BYTES must be a whole number of bytes >= 4096, not {raw!r}"
        )
    return int(raw)

# Read by tmux when it starts the fleet's server (either supervisor). The hook reads the
# interpreter and paths from the server's global environment, set by `ensure_server`, so
# no user-controlled text is ever parsed by tmux or a shell here.
_HOOK = (
    "\"$MOSAIC_HOOK_PYTHON\" -m mosaic.hooks pane-died "
    '#{session_name} #{pane_id} "#{pane_dead_status}" "#{pane_dead_signal}" '
    '2>>"$MOSAIC_HOME/fleet/run/hooks.err"'
)
TMUX_CONF = f"""\
# Written by mosaic fleet; read when the private tmux server starts.
set -s exit-empty off
set -g remain-on-exit on
set -g history-limit 20000
set -g default-size {WIDTH}x{HEIGHT}
set-hook -gw pane-died {{
  run-shell -b '{_HOOK}'
}}
run-shell -b -d 1 'exec "$MOSAIC_HOME/fleet/run/tmux-tick"'
"""

# tmux 3.3a sometimes leaves an exited pane process unreaped (a zombie): the pane shows
# dead, with no exit status, and pane-died never fires (reproduced here in bare tmux, one
# time in two under load). Any later exit of a child of the server makes tmux reap it and
# fire the hook, so the server runs this short job every 2 seconds; nothing stays resident.
TICK_SCRIPT = """\
#!/bin/sh
# Written by mosaic fleet: see session.py (TICK_SCRIPT) for why this exists.
exec tmux run-shell -b -d 2 'exec "$MOSAIC_HOME/fleet/run/tmux-tick"'
"""


@dataclass(frozen=True)
class Pane:
    session: str
    id: str
    pid: int
    command: str
    dead: bool
    dead_status: str
    dead_signal: str
    in_mode: bool
    cursor_x: int
    cursor_y: int
    width: int = 0

    @classmethod
    def from_row(cls, row: list[str]) -> Pane:
        return cls(
            session=row[0],
            id=row[1],
            pid=int_or_zero(row[2]),
            command=row[3],
            dead=row[4] == "1",
            dead_status=row[5],
            dead_signal=row[6],
            in_mode=row[7] == "1",
            cursor_x=int_or_zero(row[8]),
            cursor_y=int_or_zero(row[9]),
            width=int_or_zero(row[10]),
        )


def int_or_zero(text: str) -> int:
    """A number from tmux/systemctl output; empty or odd fields read as 0."""
    try:
        return int(text)
    except ValueError:
        return 0


def conf_path(paths: Paths) -> Path:
    return paths.run / "tmux.conf"


def make_tmux(paths: Paths, socket: str) -> Tmux:
    return Tmux(socket=socket, config=conf_path(paths))


def write_conf(paths: Paths) -> Path:
    """The server's config and the tick script it schedules (rewritten only when changed)."""
    for path, text, mode in (
        (paths.run / "tmux-tick", TICK_SCRIPT, 0o700),
        (conf_path(paths), TMUX_CONF, 0o600),
    ):
        try:
            if path.read_text() == text:
                continue
        except FileNotFoundError:
            pass
        atomic_write(path, text.encode(), mode=mode)
    return conf_path(paths)


def hook_environment(paths: Paths, socket: str, supervisor: str) -> dict[str, str]:
    return {
        "MOSAIC_HOOK_PYTHON": sys.executable,
        "MOSAIC_HOME": str(paths.home),
        "MOSAIC_FLEET_ROSTER": str(paths.roster),
        "MOSAIC_TMUX_SOCKET": socket,
        "MOSAIC_FLEET_SUPERVISOR": supervisor,
    }


def ensure_server(tmux: Tmux, paths: Paths, supervisor: str) -> None:
    """Start the private server if needed and (re)publish what the hooks need to know."""
    ensure_dir(paths.run)
    ensure_dir(paths.logs)
    write_conf(paths)
    if not tmux.server_running():
        # Born with the hook environment, so the config's first tick already finds it.
        env = {**(tmux.env or os.environ), **hook_environment(paths, tmux.socket, supervisor)}
        replace(tmux, env=env).run("start-server")
    publish_hook_environment(tmux, paths, supervisor)


def publish_hook_environment(tmux: Tmux, paths: Paths, supervisor: str) -> None:
    """Tell a running server's hooks where mosaic lives, in one round trip.

    Never starts a server: under systemd the server belongs to the holder unit, and one
    forked from here would land in the caller's cgroup (an agent unit) and die with it.
    A server that is not running makes tmux fail, and that failure is raised.
    """
    args: list[str] = []
    for key, value in hook_environment(paths, tmux.socket, supervisor).items():
        args += ["set-environment", "-g", key, value, ";"]
    tmux.run(*args[:-1])


def list_panes(tmux: Tmux) -> dict[str, Pane] | None:
    """Every session's first pane in ONE tmux round trip; None when no server runs."""
    rows = tmux.query(PANE_FIELDS, "list-panes", "-a")
    if rows is None:
        return None
    panes: dict[str, Pane] = {}
    for row in rows:
        pane = Pane.from_row(row)
        panes.setdefault(pane.session, pane)
    return panes


def resolve_program(runtime: Runtime, agent: Agent) -> str | None:
    search = programs.search_path(agent.env_dict.get("PATH"), os.environ)
    return programs.find(runtime.program, search)


def workdir_of(agent: Agent) -> Path:
    return agent.workdir if agent.workdir is not None else Path.home()


def require_tmux() -> None:
    """SPEC §2: tmux >= 3.2 (formats, hooks and `new-session -e` this code relies on)."""
    found = Tmux(socket="").version()
    if found < MIN_VERSION:
        want = ".".join(map(str, MIN_VERSION))
        raise ConfigError(
            f"tmux {want} or newer is required, found {'.'.join(map(str, found))} "
            "(Debian/Ubuntu: apt-get install tmux)"
        )


def preflight(roster: Roster, agents: list[Agent]) -> None:
    """Check tmux and every agent before anything starts, so a bad one leaves nothing
    half-started."""
    require_tmux()
    problems = []
    for agent in agents:
        runtime = roster.runtime_for(agent)
        workdir = workdir_of(agent)
        if not workdir.is_dir():
            problems.append(f"agent {agent.name}: workdir {workdir} does not exist")
        if resolve_program(runtime, agent) is None:
            problems.append(
                f"agent {agent.name}: program {runtime.program!r} of runtime "
                f"{runtime.name!r} not found on PATH"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def argv_of(roster: Roster, agent: Agent) -> list[str]:
    runtime = roster.runtime_for(agent)
    program = resolve_program(runtime, agent) or runtime.program
    return [program, *runtime.command[1:], *agent.args]


def launch(tmux: Tmux, paths: Paths, roster: Roster, agent: Agent, pane: Pane | None) -> Pane:
    """Create the agent's session (replacing a dead one, so roster edits take effect)."""
    if pane is not None and not pane.dead:
        return pane
    if pane is not None:
        kill_session(tmux, agent.name)
    env_args: list[str] = []
    for key, value in agent.env:
        env_args += ["-e", f"{key}={value}"]
    try:
        out = tmux.out(
            "new-session", "-d", "-s", agent.name, "-x", str(WIDTH), "-y", str(HEIGHT),
            "-c", str(workdir_of(agent)), *env_args, "-P", "-F", "#{pane_id}\x1f#{pane_pid}",
            "--", *argv_of(roster, agent),
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
    attach_transcript(tmux, paths, agent.name, pane_id)
    return Pane(agent.name, pane_id, int_or_zero(pid), "", False, "", "", False, 0, 0)


def attach_transcript(tmux: Tmux, paths: Paths, name: str, pane_id: str) -> None:
    """Pipe the pane's output into a size-capped, rotated transcript.

    The pipe is a POSIX sh loop around `dd` (a few hundred KiB of RSS) rather than a
    Python process, keeping per-agent overhead small.
    """
    log = paths.agent_log(name)
    ensure_dir(log.parent)
    script = (
        'f="$1"; max="$2"; '
        "while :; do "
        's=$(wc -c < "$f" 2>/dev/null) || s=0; '
        'if [ "$s" -ge "$max" ]; then mv -f "$f" "$f.1" || exit 1; s=0; fi; '
        # dd, unlike head, writes each read at once (no stdio buffering): `logs -f` is live.
        # It may stop before `count` (a short pipe read counts as a block), so only a run
        # that added nothing means the pane closed the pipe.
        'dd iflag=count_bytes count="$((max - s))" bs=4096 status=none '
        'oflag=append conv=notrunc of="$f" || exit 1; '
        'n=$(wc -c < "$f") || exit 1; '
        '[ "$n" -gt "$s" ] || exit 0; '
        "done"
    )
    command = "umask 077; exec " + shlex.join(
        ["sh", "-c", script, "sh", str(log), str(log_max_bytes())]
    )
    tmux.run("pipe-pane", "-t", pane_id, tmux_literal(command))


def tmux_literal(command: str) -> str:
    """Protect a shell command from tmux's own expansion of #{formats} and %strftime."""
    return command.replace("#", "##").replace("%", "%%")


def kill_tree(tmux: Tmux, pane: Pane, runtime: Runtime, grace: float = 3.0) -> None:
    """Stop the pane's whole process tree: quit keys, SIGTERM, SIGKILL; confirm it is gone."""
    if pane.dead or pane.pid <= 0:
        return
    members = procs.tree(pane.pid)
    if runtime.quit_keys and procs.alive(pane.pid):
        try:
            for key in runtime.quit_keys:
                tmux.run("send-keys", "-t", pane.id, key)
            procs.wait_gone([pane.pid], 1.5)
        except TmuxError:
            pass
    # Re-read: the tree may have grown since; keep what we saw first too (reparented kids).
    members = sorted(set(members) | set(procs.tree(pane.pid)))
    survivors = procs.terminate([p for p in members if procs.alive(p)], grace=grace)
    if survivors:
        raise OperationFailed(
            f"agent {pane.session}: processes {survivors} survived SIGKILL"
        )


def kill_session(tmux: Tmux, name: str) -> None:
    proc = tmux.run("kill-session", "-t", f"={name}", check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        if "can't find session" not in err and "no server running" not in err:
            raise TmuxError(f"tmux kill-session: {err.strip()}")



_MARK = "\x1e"


def capture_many(tmux: Tmux, pane_ids: list[str]) -> dict[str, str]:
    """Visible screens of many panes in ONE tmux invocation (commands chained with `;`)."""
    if not pane_ids:
        return {}
    args: list[str] = []
    for pane_id in pane_ids:
        args += ["display-message", "-p", "-t", pane_id, _MARK + "#{pane_id}", ";"]
        args += ["capture-pane", "-p", "-t", pane_id, ";"]
    proc = tmux.run(*args[:-1], check=False)
    screens: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in proc.stdout.decode("utf-8", errors="replace").split("\n"):
        if line.startswith(_MARK):
            current = screens.setdefault(line[1:], [])
        elif current is not None:
            current.append(line)
    # capture-pane ends with a newline: drop the empty string split() leaves after it.
    return {pid: "\n".join(lines[:-1] if lines and lines[-1] == "" else lines)
            for pid, lines in screens.items()}  # fmt: skip
