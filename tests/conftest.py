"""Fixtures: every test gets a private mosaic home and a private tmux server.

TMUX_TMPDIR is a short directory under /tmp because tmux socket paths are limited to
~108 bytes; the socket name is unique per test, and the server is killed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def fleet_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for running `mosaic` against a private home, roster and tmux server."""
    tmux_dir = Path(tempfile.mkdtemp(prefix="mt-", dir="/tmp"))
    socket = f"t{uuid.uuid4().hex[:10]}"
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "MOSAIC_"))}
    env.update(
        MOSAIC_HOME=str(home),
        TMUX_TMPDIR=str(tmux_dir),
        MOSAIC_TMUX_SOCKET=socket,
        MOSAIC_FLEET_SUPERVISOR="tmux",
        HOME=str(tmp_path),
        SHELL="/bin/bash",
    )
    env.pop("XDG_CONFIG_HOME", None)
    yield env
    _kill_tmux_server(env, socket)
    shutil.rmtree(tmux_dir, ignore_errors=True)


def _kill_tmux_server(env: dict[str, str], socket: str) -> None:
    if shutil.which("tmux") is None:
        return
    pids = subprocess.run(
        ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_pid}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()
    subprocess.run(
        ["tmux", "-L", socket, "kill-server"], env=env, capture_output=True, timeout=10
    )
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.killpg(int(pid), signal.SIGKILL)
