"""`status --json` of a 50-agent fleet against the floor any status must pay.

The floor is a fresh interpreter that asks tmux what status needs and nothing more: one
`list-panes -a` for every pane's fields and one chained `capture-pane` of all 50 screens.
`mosaic fleet status --json` adds the roster, the supervision records, the classifier and
the JSON; it should stay within 1.5x of that floor. The fleet's watcher answers it
(`watch/serve.py`): that is the `served` row. The `fallback` row is the same command when
the watcher declines (the caller's `$TZ` differs from the watcher's: an equal zone spelled
otherwise) and the command builds the document itself, as it does with no watcher. All
three run against the same live fleet, interleaved round by round in rotating order, so
load on the machine hits them alike; each figure is a median.
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
            declined = {**env, "TZ": ":/etc/localtime"}
            _wait_served(env)
            runs = {
                "floor": (floor_argv, env),
                "served": (status_argv, env),
                "fallback": (status_argv, declined),
            }
            run_cmd(floor_argv, env)  # fails loudly if the floor script is broken
            if _served(status_argv, declined):
                raise RuntimeError("bench: the fallback runs were served")
            samples: dict[str, list[float]] = {name: [] for name in runs}

            def timed(name: str) -> None:
                argv, run_env = runs[name]
                t0 = time.perf_counter()
                run_cmd(argv, run_env)
                samples[name].append(time.perf_counter() - t0)

            for _ in range(2):  # warm-up: bytecode, the roster's document cache
                for name in runs:
                    run_cmd(*runs[name])
            order = list(runs)
            for i in range(REPEAT):
                for name in order[i % 3 :] + order[: i % 3]:
                    timed(name)
            if not _served(status_argv, env):
                raise RuntimeError("bench: the watcher stopped serving during the runs")
            floor, served, fallback = (statistics.median(samples[n]) for n in runs)
        finally:
            run_cmd([MOSAIC, "fleet", "stop"], env=env, check=False)
            run_cmd(["tmux", "-L", socket, "kill-server"], env=env, check=False)
            shutil.rmtree(tmux_dir, ignore_errors=True)
    return [
        Row(f"status --json ({AGENTS} agents), served", served, "2 raw tmux round trips",
            floor, target=1.5),
        Row(f"status --json ({AGENTS} agents), fallback", fallback, "2 raw tmux round trips",
            floor),
    ]  # fmt: skip


def _served(argv: list[str], env: dict[str, str]) -> bool:
    """Whether the watcher answered: the served path never imports the status module."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv],
                          env=env, capture_output=True, check=True)  # fmt: skip
    return b"mosaic.agents.status" not in proc.stderr


def _wait_served(env: dict[str, str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not _served([MOSAIC, "fleet", "status", "--json"], env):
        if time.monotonic() > deadline:
            raise RuntimeError("bench: the watcher does not serve status")
        time.sleep(0.2)
