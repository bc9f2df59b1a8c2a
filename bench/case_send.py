"""`send` cost against the floor any verified paste must pay, timed in the same run.

The floor is what a careful script does by hand with raw tmux calls: load-buffer,
paste-buffer, the 150 ms paste window, Enter, one capture-pane. A verified `mosaic fleet send`
adds interpreter start-up, the roster, the lock, the pre-checks and the polling; it should
stay within 2x. `--all` to 20 agents is delivered in parallel, so it should cost no more
than 2x a single send, not 20x.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, median_time, run_cmd

AGENTS = 20
MESSAGE = "true"


def _roster(n: int) -> str:
    agents = "".join(f"  - name: b{i:02d}\n    runtime: shell\n" for i in range(n))
    return f"version: 1\nagents:\n{agents}"


def _wait_idle(env: dict[str, str], names: list[str], timeout: float = 20.0) -> None:
    import json

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            [MOSAIC, "fleet", "status", "--json"], env=env, capture_output=True, check=True
        ).stdout
        rows = {r["name"]: r for r in json.loads(out)["agents"]}
        if all(rows[n]["state"] == "running" and rows[n]["activity"] == "idle" for n in names):
            return
        time.sleep(0.1)
    raise RuntimeError("agents did not become idle")


def run() -> list[Row]:
    if shutil.which("tmux") is None:
        return []
    tmux_dir = Path(tempfile.mkdtemp(prefix="mb-", dir="/tmp"))
    socket = f"bench{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="mosaic-bench-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp) / "home"
        (home / "fleet").mkdir(parents=True)
        (home / "fleet" / "roster.yaml").write_text(_roster(AGENTS))
        env = {k: v for k, v in base_env().items() if not k.startswith(("TMUX", "MOSAIC_"))}
        env.update(
            MOSAIC_HOME=str(home),
            TMUX_TMPDIR=str(tmux_dir),
            MOSAIC_TMUX_SOCKET=socket,
            MOSAIC_FLEET_SUPERVISOR="tmux",
            HOME=tmp,
            SHELL="/bin/bash",
        )
        tmux = ["tmux", "-L", socket]
        try:
            run_cmd([MOSAIC, "fleet", "start"], env=env)
            names = [f"b{i:02d}" for i in range(AGENTS)]
            _wait_idle(env, names)
            pane = subprocess.run(
                [*tmux, "display-message", "-p", "-t", "=b00:", "#{pane_id}"],
                env=env, capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip

            def raw() -> None:
                name = f"raw-{os.getpid()}"
                subprocess.run([*tmux, "load-buffer", "-b", name, "-"], env=env,
                               input=MESSAGE.encode(), check=True)  # fmt: skip
                run_cmd([*tmux, "paste-buffer", "-p", "-r", "-d", "-b", name, "-t", pane], env)
                time.sleep(0.15)
                run_cmd([*tmux, "send-keys", "-t", pane, "Enter"], env)
                run_cmd([*tmux, "capture-pane", "-p", "-t", pane], env)

            one = [MOSAIC, "fleet", "send", "b00", MESSAGE]
            every = [MOSAIC, "fleet", "send", "--all", MESSAGE]
            floor = median_time(raw, repeat=15)
            single = median_time(lambda: run_cmd(one, env), repeat=15)
            fleet = median_time(lambda: run_cmd(every, env), repeat=9)
        finally:
            subprocess.run([*tmux, "kill-server"], env=env, capture_output=True)
            shutil.rmtree(tmux_dir, ignore_errors=True)
    return [
        Row(
            "send: verified, idle bash agent",
            single,
            "raw paste+150ms+Enter+capture",
            floor,
            target=2.0,
        ),
        Row(f"send: --all to {AGENTS} agents", fleet, "one verified send", single, target=2.0),
    ]
