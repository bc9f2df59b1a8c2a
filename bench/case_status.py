"""`status --json` of a 50-agent fleet against the floor any status must pay.

The floor is a fresh interpreter that asks tmux what status needs and nothing more: one
`list-panes -a` for every pane's fields and one chained `capture-pane` of all 50 screens.
`mosaic fleet status --json` adds the roster, the supervision records, the classifier and
the JSON; it should stay within 1.5x of that floor. Both run against the same live fleet,
alternately, so load on the machine hits both alike.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, run_cmd

AGENTS = 50
REPEAT = 21

# What the floor runs: the two tmux round trips, in a fresh interpreter.
FLOOR = """\
import subprocess, sys
tmux = ["tmux", "-L", sys.argv[1]]
fields = "\\x1f".join("#{" + f + "}" for f in
                    ("session_name", "pane_id", "pane_pid", "pane_current_command", "pane_dead"))
rows = subprocess.run([*tmux, "list-panes", "-a", "-F", fields],
                      capture_output=True, check=True).stdout.decode().splitlines()
args = []
for row in rows:
    args += ["capture-pane", "-p", "-t", row.split("\\x1f")[1], ";"]
subprocess.run([*tmux, *args[:-1]], capture_output=True, check=True)
"""


def _roster(n: int) -> str:
    agents = "".join(f"  - name: s{i:02d}\n    runtime: demo\n" for i in range(n))
    return f"version: 1\nagents:\n{agents}"


def _wait_idle(env: dict[str, str], n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            [MOSAIC, "fleet", "status", "--json"], env=env, capture_output=True, check=True
        ).stdout
        rows = json.loads(out)["agents"]
        if len(rows) == n and all(
            r["state"] == "running" and r["activity"] == "idle" for r in rows
        ):
            return
        time.sleep(0.2)
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
        )
        try:
            run_cmd([MOSAIC, "fleet", "start"], env=env)
            _wait_idle(env, AGENTS)
            floor_argv = [sys.executable, "-c", FLOOR, socket]
            status_argv = [MOSAIC, "fleet", "status", "--json"]
            run_cmd(floor_argv, env)  # fails loudly if the floor script is broken
            samples: dict[str, list[float]] = {"floor": [], "status": []}

            def timed(name: str, argv: list[str]) -> None:
                t0 = time.perf_counter()
                run_cmd(argv, env)
                samples[name].append(time.perf_counter() - t0)

            for _ in range(2):  # warm-up: bytecode, the roster's document cache
                run_cmd(status_argv, env)
            for _ in range(REPEAT):
                timed("floor", floor_argv)
                timed("status", status_argv)
            floor = statistics.median(samples["floor"])
            status = statistics.median(samples["status"])
        finally:
            run_cmd([MOSAIC, "fleet", "stop"], env=env, check=False)
            run_cmd(["tmux", "-L", socket, "kill-server"], env=env, check=False)
            shutil.rmtree(tmux_dir, ignore_errors=True)
    return [
        Row(
            f"status --json ({AGENTS} demo agents)",
            status,
            "2 raw tmux round trips",
            floor,
            target=1.5,
        )
    ]
