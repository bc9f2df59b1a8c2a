"""The outbox's budgets (docs/outbox.md), each a ratio against a baseline from the same run.

- `send --queue` returns (answered before click, `cli/quicksend.py`) against
  `mosaic --version`: target 1.5. Queued for a stopped agent, so nothing is delivered
  while it is timed.
- Queue → delivered to an idle demo agent (from the start of `send --queue` until the
  agent's `--record` file holds the message) against a direct `send` of the same kind of
  message (from its start until the record holds it) plus one watcher tick (0.2 s):
  target 1.5. The two alternate, with the agent idle before each.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, run_cmd

ROUNDS = 9
TICK_S = 0.2  # mosaic.watch.loop.TICK_S


def _records(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def _wait(predicate: Callable[[], bool], timeout: float = 60.0, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("bench: timed out")
        time.sleep(step)


def _idle(env: dict[str, str], name: str) -> bool:
    out = subprocess.run([MOSAIC, "fleet", "status", "--json"], env=env, capture_output=True,
                         check=True).stdout  # fmt: skip
    doc = json.loads(out)
    row = next(r for r in doc["agents"] if r["name"] == name)
    watcher = doc.get("watcher") or {}
    return bool(row["state"] == "running" and row["activity"] == "idle"
                and watcher.get("state") == "running")  # fmt: skip


def _interleaved(
    base: list[str], cmd: list[str], env: dict[str, str], repeat: int = 41
) -> tuple[float, float]:
    """Medians of two commands timed turn about, so a shift in the machine's load (its
    cores are shared) falls on both alike."""
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat + 2):
        for argv, into in ((base, samples[0]), (cmd, samples[1])):
            t0 = time.perf_counter()
            run_cmd(argv, env)
            if i >= 2:  # warm-up
                into.append(time.perf_counter() - t0)
    return statistics.median(samples[0]), statistics.median(samples[1])


def run() -> list[Row]:
    if shutil.which("tmux") is None:
        return []
    tmux_dir = Path(tempfile.mkdtemp(prefix="mb-", dir="/tmp"))
    socket = f"bench{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="mosaic-bench-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp) / "home"
        (home / "fleet").mkdir(parents=True)
        rec = Path(tmp) / "d1.rec"
        (home / "fleet" / "roster.yaml").write_text(
            "version: 1\nagents:\n"
            f"  - name: d1\n    runtime: demo\n    args: [--think, '0', --record, '{rec}']\n"
            "  - name: parked\n    runtime: demo\n"
        )
        env = {k: v for k, v in base_env().items() if not k.startswith(("TMUX", "MOSAIC_"))}
        env.update(MOSAIC_HOME=str(home), TMUX_TMPDIR=str(tmux_dir), MOSAIC_TMUX_SOCKET=socket,
                   MOSAIC_FLEET_SUPERVISOR="tmux", HOME=tmp)  # fmt: skip
        try:
            run_cmd([MOSAIC, "fleet", "start", "d1"], env=env)
            _wait(lambda: _idle(env, "d1"), step=0.1)
            # The first queue creates nothing new (start made the database) and leaves the
            # roster's names cache, as any command that loaded the roster does.
            run_cmd([MOSAIC, "fleet", "send", "--queue", "parked", "warm-up"], env=env)
            version, queue = _interleaved(
                [MOSAIC, "--version"], [MOSAIC, "fleet", "send", "--queue", "parked", "a task"], env
            )
            direct: list[float] = []
            queued: list[float] = []
            for i in range(ROUNDS):
                for how, samples in (("send", direct), ("queue", queued)):
                    text = f"{how} round {i}"
                    _wait(lambda: _idle(env, "d1"), step=0.1)
                    time.sleep(0.6)  # the watcher's debounce after the previous delivery
                    argv = [MOSAIC, "fleet", "send", *(["--queue"] if how == "queue" else []),
                            "d1", text]  # fmt: skip
                    t0 = time.perf_counter()
                    run_cmd(argv, env)
                    _wait(lambda t=text: t in _records(rec))  # type: ignore[misc]
                    samples.append(time.perf_counter() - t0)
            got = _records(rec)
            if len(got) != len(set(got)) or len(got) != 2 * ROUNDS:
                raise RuntimeError(f"bench: the agent received {got}")
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True)
            shutil.rmtree(tmux_dir, ignore_errors=True)
    send_s = statistics.median(direct)
    return [
        Row("outbox: send --queue returns", queue, "mosaic --version", version, target=1.5),
        Row(
            "outbox: queue -> delivered, idle demo",
            statistics.median(queued),
            "direct send + one tick",
            send_s + TICK_S,
            target=1.5,
        ),
    ]
