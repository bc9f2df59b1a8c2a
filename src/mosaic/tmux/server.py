"""The fleet's private tmux server: its config, the environment its hooks need, and
bringing it up.

Shared by both supervisors: the tmux supervisor starts the server from the CLI; under
systemd `mosaic-tmux-holder.service` runs it and the agent units only publish the hook
environment. Nothing that reaches the server from outside (session, window or pane names)
is ever put into a shell command: hooks are handed the pane id (`%N`) and look the rest up
themselves.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from mosaic.base import procs
from mosaic.base.fs import atomic_write, ensure_dir
from mosaic.config.paths import Paths
from mosaic.config.roster import SUPERVISOR_ENV
from mosaic.errors import ConfigError
from mosaic.tmux.client import MIN_VERSION, Tmux, literal

WIDTH, HEIGHT = 200, 50

# The pane-died hook. It refers to the interpreter and files only through the server's
# environment (`hook_environment`) and hands the hook nothing but the pane id (`%N`), so no
# path and no name from the server is ever parsed by tmux or a shell here.
_HOOK = '"$MOSAIC_HOOK_PYTHON" -m mosaic.hooks pane-died #{pane_id} 2>>"$MOSAIC_HOOKS_LOG"'
PANE_DIED_HOOK = f"run-shell -b '{_HOOK}'"

# Read by tmux when it starts the fleet's server (either supervisor).
TMUX_CONF = f"""\
# Written by mosaic fleet; read when the private tmux server starts.
set -s exit-empty off
set -g remain-on-exit on
set -g history-limit 20000
set -g default-size {WIDTH}x{HEIGHT}
set-hook -gw pane-died {{
  {PANE_DIED_HOOK}
}}
run-shell -b -d 1 'exec "$MOSAIC_TMUX_TICK"'
"""

# tmux 3.3a sometimes leaves an exited pane process unreaped (a zombie): the pane shows
# dead, with no exit status, and pane-died never fires (reproduced here in bare tmux, one
# time in two under load). Any later exit of a child of the server makes tmux reap it and
# fire the hook, so the server runs this short job every 2 seconds; nothing stays resident.
TICK_SCRIPT = """\
#!/bin/sh
# Written by mosaic fleet: the tmux server runs this every 2 s so that tmux reaps exited
# pane processes (docs/architecture.md, "the tick").
exec tmux run-shell -b -d 2 'exec "$MOSAIC_TMUX_TICK"'
"""


def make_tmux(paths: Paths, socket: str) -> Tmux:
    return Tmux(socket=socket, config=paths.tmux_conf)


def write_conf(paths: Paths) -> None:
    """The server's config and the tick script it schedules (rewritten only when changed),
    and the hooks' error log, created private here: the hooks append to it through a shell
    redirect, which would create it under the server's umask."""
    for path, text, mode in (
        (paths.tmux_tick, TICK_SCRIPT, 0o700),
        (paths.tmux_conf, TMUX_CONF, 0o600),
    ):
        try:
            if path.read_text() == text:
                continue
        except FileNotFoundError:
            pass
        atomic_write(path, text.encode(), mode=mode)
    fd = os.open(paths.hooks_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.close(fd)


def hook_environment(paths: Paths, socket: str, python: str | None = None) -> dict[str, str]:
    """What the server's hooks and tick need: the one place that names these variables
    (the systemd units carry the same set)."""
    return {
        "MOSAIC_HOOK_PYTHON": python or sys.executable,
        "MOSAIC_HOME": str(paths.home),
        "MOSAIC_FLEET_ROSTER": str(paths.roster),
        "MOSAIC_TMUX_SOCKET": socket,
        "MOSAIC_TMUX_TICK": str(paths.tmux_tick),
        "MOSAIC_HOOKS_LOG": str(paths.hooks_log),
    }


def ensure_server(tmux: Tmux, paths: Paths) -> None:
    """Start the private server if needed and (re)publish what the hooks need to know."""
    ensure_dir(paths.run)
    ensure_dir(paths.logs)
    write_conf(paths)
    if not tmux.server_running():
        # Born with the hook environment, so the config's first tick already finds it.
        env = {**(tmux.env or os.environ), **hook_environment(paths, tmux.socket)}
        replace(tmux, env=env).run("start-server")
    publish_hook_environment(tmux, paths)


def publish_hook_environment(tmux: Tmux, paths: Paths) -> None:
    """Tell a running server's hooks where mosaic lives and (re)install the pane-died
    hook, in one round trip. A server keeps the hook its config had when it started, and
    mosaic 0.1's passed the session name through a shell: this replaces it (and clears
    what else 0.1 published) on the next start of any agent.

    Never starts a server: under systemd the server belongs to the holder unit, and one
    forked from here would land in the caller's cgroup (an agent unit) and die with it.
    A server that is not running makes tmux fail, and that failure is raised.
    """
    args: list[str] = []
    for key, value in hook_environment(paths, tmux.socket).items():
        args += ["set-environment", "-g", key, literal(value), ";"]
    # 0.1 published the supervisor here too; panes inherit it, and a `mosaic` run inside an
    # agent would take it for an explicit setting.
    args += ["set-environment", "-gu", SUPERVISOR_ENV, ";"]
    tmux.run(*args, "set-hook", "-gw", "pane-died", PANE_DIED_HOOK)


def server_pid(tmux: Tmux) -> int | None:
    """The fleet's tmux server process, None when no server answers."""
    proc = tmux.run("display-message", "-p", "#{pid}", check=False)
    text = proc.stdout.decode(errors="replace").strip()
    return int(text) if proc.returncode == 0 and text.isdigit() else None


def kill_server(tmux: Tmux, timeout: float = 5.0) -> None:
    """Stop the fleet's tmux server and wait until its process is gone: a dying server
    still accepts clients for a moment, and a `start` right after would talk to it and be
    told `server exited unexpectedly`."""
    pid = server_pid(tmux)
    tmux.run("kill-server", check=False)
    if pid is not None:
        procs.wait_gone([pid], timeout)


def require_tmux() -> None:
    """tmux >= 3.2: the formats, hooks and `new-session -e` this code relies on."""
    found = Tmux(socket="").version()
    if found < MIN_VERSION:
        want = ".".join(map(str, MIN_VERSION))
        raise ConfigError(
            f"tmux {want} or newer is required, found {'.'.join(map(str, found))} "
            "(Debian/Ubuntu: apt-get install tmux)"
        )
