"""The watcher's budgets, each as a ratio against its bound or a baseline from the same run.

- CPU and RSS of the watcher (with the tmux clients and anything else it forked) at 50
  idle agents, from /proc over 30 s: against 2 % of one core and 60 MiB (target 1.0).
- Event latency: 50 activity transitions of a demo agent; for each, the time from when the
  screen first showed the new activity (a capture every 20 ms watches it) to the event's
  `ts`; the p95 against 1.5 s (target 1.0). The debounce (0.5 s) is part of it by design.
- `events --json` of 10,000 events against a fresh interpreter's sqlite3 dump of the same
  rows (target 2.0).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, median_time, rss_kib, run_cmd

IDLE_AGENTS = 50
MEASURE_S = 30.0
TRANSITIONS = 50
EVENTS = 10_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    """utime+stime of `pid`, plus cutime+cstime (children it has reaped)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15])


def _tree(pid: int) -> list[int]:
    from mosaic.base import procs

    return [pid, *procs.descendants(pid, procs.all_procs())]


def _status(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([MOSAIC, "fleet", "status", "--json"], env=env, capture_output=True,
                         check=True).stdout  # fmt: skip
    doc: dict[str, object] = json.loads(out)
    return doc


def _wait(predicate: object, timeout: float = 120.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("bench: timed out")
        time.sleep(0.1)


def _fleet(tmp: Path, roster: str) -> dict[str, str]:
    home = tmp / "home"
    (home / "fleet").mkdir(parents=True)
    (home / "fleet" / "roster.yaml").write_text(roster)
    env = {k: v for k, v in base_env().items() if not k.startswith(("TMUX", "MOSAIC_"))}
    env.update(MOSAIC_HOME=str(home), TMUX_TMPDIR=str(tmp), HOME=str(tmp), SHELL="/bin/bash",
               MOSAIC_TMUX_SOCKET=f"bw{uuid.uuid4().hex[:6]}", MOSAIC_FLEET_SUPERVISOR="tmux")
    return env


def _idle_cost(tmp: Path) -> tuple[float, float]:
    """(% of one core, MiB) of the watcher's process tree at 50 idle agents."""
    agents = "".join(f"  - name: a{i:02d}\n    runtime: shell\n" for i in range(IDLE_AGENTS))
    env = _fleet(tmp, f"version: 1\nagents:\n{agents}")
    try:
        run_cmd([MOSAIC, "fleet", "start"], env)

        def ready() -> bool:
            doc = _status(env)
            rows = doc["agents"]
            assert isinstance(rows, list) and isinstance(doc["watcher"], dict)
            return doc["watcher"]["state"] == "running" and all(
                r["activity"] == "idle" for r in rows
            )

        _wait(ready)
        watcher = _status(env)["watcher"]
        assert isinstance(watcher, dict)
        pid = int(watcher["pid"])
        time.sleep(3.0)  # the last outputs of the start are behind it
        tree = _tree(pid)
        before = sum(_cpu_ticks(p) for p in tree)
        t0 = time.monotonic()
        time.sleep(MEASURE_S)
        tree_after = _tree(pid)  # children it started meanwhile and still runs
        used = sum(_cpu_ticks(p) for p in tree_after) - before
        elapsed = time.monotonic() - t0
        rss = sum(rss_kib(p) for p in tree_after) / 1024
        return 100.0 * used / CLK_TCK / elapsed, rss
    finally:
        subprocess.run([MOSAIC, "fleet", "stop"], env=env, capture_output=True, check=False)


def _latency(tmp: Path) -> list[float]:
    env = _fleet(tmp, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n"
                      "    args: ['--think', '1.5']\n")  # fmt: skip
    tmux = ["tmux", "-L", env["MOSAIC_TMUX_SOCKET"]]
    db = Path(env["MOSAIC_HOME"]) / "fleet" / "fleet.db"
    lat: list[float] = []
    try:
        run_cmd([MOSAIC, "fleet", "start"], env)
        _wait(lambda: _status(env)["agents"][0]["activity"] == "idle")  # type: ignore[index]
        time.sleep(1.0)

        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p", "-t", "=d1:"], env=env,
                                  capture_output=True, text=True).stdout  # fmt: skip

        def last_line() -> str:
            lines = [ln for ln in screen().splitlines() if ln.strip()]
            return lines[-1] if lines else ""

        def event_after(seq: int, kind: str) -> tuple[int, float] | None:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT seq, ts FROM events WHERE seq > ? AND type = ? "
                                   "AND agent = 'd1' ORDER BY seq LIMIT 1",
                                   (seq, kind)).fetchone()  # fmt: skip
            if row is None:
                return None
            ts = datetime.fromisoformat(row[1].replace("Z", "+00:00")).timestamp()
            return int(row[0]), ts

        seq = 0
        for i in range((TRANSITIONS + 1) // 2):
            subprocess.run([MOSAIC, "fleet", "send", "d1", "--no-verify", f"task {i}"], env=env,
                           capture_output=True, check=True)  # fmt: skip
            for kind, shows in (("busy", "thinking"), ("idle", "demo>")):
                while shows not in last_line():
                    time.sleep(0.02)
                seen = time.time()
                found = None
                deadline = time.monotonic() + 10
                while found is None and time.monotonic() < deadline:
                    found = event_after(seq, kind)
                    time.sleep(0.02)
                if found is None:
                    raise RuntimeError(f"no {kind} event")
                seq, ts = found
                lat.append(max(0.0, ts - seen + 0.0))
        return lat
    finally:
        subprocess.run([MOSAIC, "fleet", "stop"], env=env, capture_output=True, check=False)


def _dump(tmp: Path) -> tuple[float, float]:
    from mosaic.config.eventtypes import EventType
    from mosaic.store import db as store_db
    from mosaic.store import events

    env = _fleet(tmp, "version: 1\nagents: []\n")
    path = Path(env["MOSAIC_HOME"]) / "fleet" / "fleet.db"
    with store_db.opened(path) as conn, store_db.write(conn):
        for i in range(EVENTS):
            kind = (EventType.BUSY, EventType.IDLE, EventType.SENT)[i % 3]
            fields: dict[str, object] = {}
            if kind is EventType.IDLE:
                fields = {"busy_s": 1.5}
            elif kind is EventType.SENT:
                fields = {"outcome": "accepted", "chars": i}
            events.append(conn, [events.draft(f"a{i % 50}", kind, **fields)])
    ours = median_time(lambda: run_cmd([MOSAIC, "fleet", "events", "--json"], env), repeat=7)
    floor_code = ("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nw = sys.stdout.write\n"
                  "for r in c.execute('SELECT * FROM events ORDER BY seq'): w(repr(r) + '\\n')\n")
    floor = median_time(lambda: run_cmd([sys.executable, "-c", floor_code, str(path)], env),
                        repeat=7)  # fmt: skip
    return ours, floor


def run() -> list[Row]:
    if shutil.which("tmux") is None:
        return []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mw-", dir="/tmp") as tmp:
        ours, floor = _dump(Path(tmp) / "dump")
        rows.append(Row(f"events --json of {EVENTS} events", ours,
                        "python sqlite3 dump of the rows", floor, target=2.0))  # fmt: skip
        lat = _latency(Path(tmp) / "lat")
        p95 = statistics.quantiles(lat, n=20)[18] if len(lat) >= 20 else max(lat)
        rows.append(Row(f"event latency p95 ({len(lat)} transitions)", p95, "bound 1.5 s",
                        1.5, target=1.0))  # fmt: skip
        cpu, rss = _idle_cost(Path(tmp) / "idle")
        rows.append(Row(f"watcher CPU at {IDLE_AGENTS} idle agents", cpu, "bound 2 % of a core",
                        2.0, unit="%", target=1.0))  # fmt: skip
        rows.append(Row(f"watcher RSS at {IDLE_AGENTS} idle agents", rss, "bound 60 MiB", 60.0,
                        unit="MiB", target=1.0))  # fmt: skip
    return rows
