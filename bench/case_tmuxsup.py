"""The tmux supervisor: status cost at 50 agents, per-agent overhead, crash recovery.

- `status --json` on 50 idle agents vs the floor: a python start plus one
  `tmux list-panes -a` against the same server (target 2x).
- Supervision RSS per idle agent: what mosaic adds beside the runtime (the transcript pipe's
  processes; the tmux hooks keep nothing resident), against an idle `sleep` process.
- Crash -> running again: SIGKILL of the runtime until status shows a new pid, against the
  time of one `mosaic fleet status --json` (how fast anyone could even observe it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, median_time, rss_kib, run_cmd, time_cmd


def _status(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([MOSAIC, "fleet", "status", "--json"], env=env, capture_output=True,
                         check=True).stdout  # fmt: skip
    doc: dict[str, object] = json.loads(out)
    return doc


def _agents(env: dict[str, str]) -> list[dict[str, object]]:
    rows = _status(env)["agents"]
    assert isinstance(rows, list)
    return rows


def _wait(predicate: object, timeout: float = 60.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("bench: timed out")
        time.sleep(0.02)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return [int(p) for p in out.split()]


def run() -> list[Row]:
    tmp = Path(tempfile.mkdtemp(prefix="mb-", dir="/tmp"))
    socket = f"bench{uuid.uuid4().hex[:6]}"
    env = base_env(MOSAIC_HOME=str(tmp / "home"), TMUX_TMPDIR=str(tmp),
                   MOSAIC_TMUX_SOCKET=socket, MOSAIC_FLEET_SUPERVISOR="tmux")  # fmt: skip
    env.pop("TMUX", None)
    roster = tmp / "home" / "fleet" / "roster.yaml"
    roster.parent.mkdir(parents=True)
    names = [f"a{i:02d}" for i in range(50)]
    roster.write_text(
        "version: 1\nagents:\n"
        + "".join(f"  - name: {n}\n    runtime: shell\n" for n in names)
        + "  - name: victim\n    runtime: shell\n"
    )
    rows: list[Row] = []
    try:
        run_cmd([MOSAIC, "fleet", "start"], env=env)
        _wait(lambda: all(a["state"] == "running" for a in _agents(env)))
        tmux = shutil.which("tmux") or "tmux"
        script = (f"import subprocess; subprocess.run(['{tmux}', '-L', '{socket}', "
                  "'list-panes', '-a'], capture_output=True)")  # fmt: skip
        floor = time_cmd([sys.executable, "-c", script], env=env, repeat=15)
        status = time_cmd([MOSAIC, "fleet", "status", "--json"], env=env, repeat=15)
        rows.append(Row("tmuxsup: status --json, 51 agents", status,
                        "python + 1 list-panes", floor, target=2.0))  # fmt: skip

        server = int(subprocess.run([tmux, "-L", socket, "display", "-p", "#{pid}"], env=env,
                                    capture_output=True, text=True, check=True).stdout)  # fmt: skip
        panes = {a["pid"] for a in _agents(env)}
        extra = [p for p in _children(server) if p not in panes]
        helpers = extra + [c for p in extra for c in _children(p)]
        per_agent = sum(rss_kib(p) for p in helpers) / len(panes) / 1024
        sleeper = subprocess.Popen(["sleep", "60"])
        time.sleep(0.1)
        sleep_mib = rss_kib(sleeper.pid) / 1024
        sleeper.kill()
        sleeper.wait()
        rows.append(Row("tmuxsup: supervision RSS per idle agent", per_agent,
                        "one idle `sleep`", sleep_mib, unit="MiB"))  # fmt: skip

        one_status = median_time(lambda: _status(env), repeat=5, warmup=1)
        samples = []
        for _ in range(3):
            victim = next(a for a in _agents(env) if a["name"] == "victim")
            pid = int(str(victim["pid"]))
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)

            def back(old: int = pid) -> bool:
                row = next(a for a in _agents(env) if a["name"] == "victim")
                return row["state"] == "running" and row["pid"] not in (None, old)

            _wait(back, timeout=30)
            samples.append(time.perf_counter() - t0)
            # An operator restart resets the crash streak: each sample is a first crash.
            run_cmd([MOSAIC, "fleet", "restart", "victim"], env=env)
        samples.sort()
        rows.append(Row("tmuxsup: crash -> running again (median of 3)", samples[1],
                        "one status --json", one_status))  # fmt: skip
    finally:
        subprocess.run([MOSAIC, "fleet", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return rows

