"""`watch` and `attach` in a real terminal: an outer tmux pane on a second private socket
plays the operator's terminal."""

from __future__ import annotations

import shlex
import subprocess
import sys

from fleetkit import ok, shell_roster, status, tmux, write_roster
from helpers import wait_until


def _outer(env: dict[str, str], *args: str) -> str:
    sock = env["MOSAIC_TMUX_SOCKET"] + "-outer"
    proc = subprocess.run(["tmux", "-L", sock, *args], env=env, capture_output=True,
                          text=True, timeout=15, check=True)  # fmt: skip
    return proc.stdout


def _operator_terminal(env: dict[str, str], command: str) -> None:
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("MOSAIC_", "TMUX_TMPDIR")))  # fmt: skip
    _outer(env, "new-session", "-d", "-s", "op", "-x", "120", "-y", "30", "--",
           "sh", "-c", f"{exports} {shlex.quote(sys.executable)} -m mosaic fleet {command}; "
           "echo operator-exited-$?; sleep 30")  # fmt: skip


def _operator_screen(env: dict[str, str]) -> str:
    return _outer(env, "capture-pane", "-p", "-t", "op")


def _inner_screen(env: dict[str, str]) -> str:
    return tmux(env, "capture-pane", "-p", "-t", "=a1:")


def _start_with_marker(env: dict[str, str]) -> None:
    write_roster(env, shell_roster(["a1"]))
    ok(env, "start")
    wait_until(lambda: status(env)["agents"][0]["state"] == "running")
    tmux(env, "send-keys", "-t", "=a1:", "-l", "--", "echo marker-$((40+2))")
    tmux(env, "send-keys", "-t", "=a1:", "Enter")
    wait_until(lambda: "marker-42" in _inner_screen(env))


def test_watch_shows_the_agent_and_ignores_typing(fleet_env: dict[str, str]) -> None:
    _start_with_marker(fleet_env)
    try:
        _operator_terminal(fleet_env, "watch a1")
        wait_until(lambda: "marker-42" in _operator_screen(fleet_env))
        _outer(fleet_env, "send-keys", "-t", "op", "-l", "echo typed-$((1+1))")
        _outer(fleet_env, "send-keys", "-t", "op", "Enter")
        # The view is live: what the agent prints next shows in the operator's terminal.
        tmux(fleet_env, "send-keys", "-t", "=a1:", "-l", "--", "echo second-$((5*5))")
        tmux(fleet_env, "send-keys", "-t", "=a1:", "Enter")
        wait_until(lambda: "second-25" in _operator_screen(fleet_env))
        # A read-only client's keys never reach the agent. Markers: the operator detaches
        # (prefix + d still works read-only), and tmux handles a client's keys in order, so
        # the typed keys were handled before it; anything they wrote into the agent's
        # terminal would then reach bash before a command typed into it afterwards.
        _outer(fleet_env, "send-keys", "-t", "op", "C-b", "d")
        wait_until(lambda: "operator-exited-0" in _operator_screen(fleet_env),
                   what="the watch client detached")  # fmt: skip
        tmux(fleet_env, "send-keys", "-t", "=a1:", "-l", "--", "echo third-$((3*3))")
        tmux(fleet_env, "send-keys", "-t", "=a1:", "Enter")
        wait_until(lambda: "third-9" in _inner_screen(fleet_env), what="the later command")
        assert "typed" not in _inner_screen(fleet_env)
    finally:
        _outer(fleet_env, "kill-server")


def test_attach_types_into_the_agent(fleet_env: dict[str, str]) -> None:
    _start_with_marker(fleet_env)
    try:
        _operator_terminal(fleet_env, "attach a1")
        wait_until(lambda: "marker-42" in _operator_screen(fleet_env))
        _outer(fleet_env, "send-keys", "-t", "op", "-l", "echo typed-$((1+1))")
        _outer(fleet_env, "send-keys", "-t", "op", "Enter")
        wait_until(lambda: "typed-2" in _inner_screen(fleet_env))
    finally:
        _outer(fleet_env, "kill-server")


def test_watch_without_a_terminal_is_a_clear_error(fleet_env: dict[str, str]) -> None:
    _start_with_marker(fleet_env)
    res = subprocess.run([sys.executable, "-m", "mosaic", "fleet", "watch", "a1"],
                         env=fleet_env, capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)  # fmt: skip
    assert res.returncode == 1
    assert "terminal" in res.stderr and "Traceback" not in res.stderr
