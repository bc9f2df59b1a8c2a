"""Is the runtime running, and is it the one in front of the pane, for programs that tmux
names after their interpreter (aider 0.86: `#{pane_current_command}` is `python3.11`, the
venv's interpreter, whose version varies from machine to machine).

Real processes in a real tmux pane: a script named `aider`, started the ways installers
start it (a direct interpreter shebang, an `env python3` shebang, an interpreter whose
argv[0] says `python3.99`), and then other programs in front of it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from helpers import wait_until
from mosaic.agents.liveness import runtime_alive, runtime_in_front
from mosaic.config.runtimes import builtin_runtimes
from mosaic.tmux.client import Tmux
from mosaic.tmux.panes import Pane, list_panes

AIDER = builtin_runtimes()["aider"]
# Waits for a line; on "fg" it gives the terminal to a child, as a job-control shell does.
BODY = (
    "import os, signal, subprocess, sys\n"
    "print('> ', end='', flush=True)\n"
    "for line in sys.stdin:\n"
    "    if line.strip() == 'fg':\n"
    "        child = subprocess.Popen(['sleep', '30'], process_group=0)\n"
    "        signal.signal(signal.SIGTTOU, signal.SIG_IGN)\n"
    "        os.tcsetpgrp(0, child.pid)\n"
    "        child.wait()\n"
)


def script(tmp: Path, shebang: str) -> Path:
    path = tmp / "aider"
    path.write_text(f"#!{shebang}\n{BODY}")
    path.chmod(0o755)
    return path


def pane_of(tmux: Tmux, name: str, command: str) -> Pane:
    """The session's pane once tmux shows `command` in front (a prefix ending in `*`)."""

    def ready() -> Pane | None:
        pane = (list_panes(tmux) or {}).get(name)
        if pane is None:
            return None
        if command.endswith("*"):
            return pane if pane.command.startswith(command[:-1]) else None
        return pane if pane.command == command else None

    return wait_until(ready, what=f"{name} showing {command}")


@pytest.fixture
def tmux(fleet_env: dict[str, str]) -> Tmux:
    return Tmux(fleet_env["MOSAIC_TMUX_SOCKET"], env=fleet_env)


def launch(tmux: Tmux, name: str, argv: list[str]) -> None:
    tmux.run("new-session", "-d", "-s", name, "-x", "100", "-y", "20", "--", *argv)


def test_an_interpreter_named_python3_99_running_aider(tmux: Tmux, tmp_path: Path) -> None:
    path = script(tmp_path, sys.executable)
    bash = shutil.which("bash") or "/bin/bash"
    launch(tmux, "odd", [bash, "-c", f'exec -a python3.99 "{sys.executable}" "{path}"'])
    pane = pane_of(tmux, "odd", "python3.99")
    assert runtime_alive(pane, AIDER)
    assert runtime_in_front(pane, AIDER)


@pytest.mark.parametrize("shebang", ["direct", "env"])
def test_console_scripts_as_installers_write_them(
    tmux: Tmux, tmp_path: Path, shebang: str
) -> None:
    env = shutil.which("env") or "/usr/bin/env"
    path = script(tmp_path, sys.executable if shebang == "direct" else f"{env} python3")
    launch(tmux, "ai", [str(path)])
    pane = pane_of(tmux, "ai", "python*")
    assert runtime_alive(pane, AIDER)
    assert runtime_in_front(pane, AIDER)
    # A child in the foreground owns the terminal now: text typed would go there.
    tmux.run("send-keys", "-t", pane.id, "fg", "Enter")
    child = pane_of(tmux, "ai", "sleep")
    assert runtime_alive(child, AIDER)
    assert not runtime_in_front(child, AIDER)


def test_another_python_program_is_not_aider(tmux: Tmux) -> None:
    launch(tmux, "py", [sys.executable, "-c", "import time; time.sleep(30)"])
    pane = pane_of(tmux, "py", "python*")
    assert not runtime_alive(pane, AIDER)
    assert not runtime_in_front(pane, AIDER)
