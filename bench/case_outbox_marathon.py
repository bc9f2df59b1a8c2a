"""The outbox's exactly-once under a long run of faults (docs/outbox.md): three demo agents
(one swallows an Enter that follows a paste within 300 ms, as some TUIs do), MESSAGES
queued messages, and while they are delivered: the watcher SIGKILLed at random moments
during deliveries, agents SIGKILLed (their supervisor respawns them), and `tmux kill-server`
(the fleet started again). Each agent's `--record` file is the ground truth; the rows count
messages lost, received twice, and out of order (target 0 each), and how the interrupted
deliveries were decided (from the delivered messages' notes, `recovered (row N)`).

`python bench/run.py marathon` runs it with the defaults below (a few minutes); run this
file directly for another size: `python bench/case_outbox_marathon.py MESSAGES SECONDS`.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, run_cmd

MESSAGES = 150
FAULT_EVERY_S = (1.0, 4.0)
AGENTS = {
    "m1": ["--think", "0.1"],
    "m2": ["--think", "0.2", "--swallow-enter-ms", "300"],
    "m3": ["--think", "0.5"],
}


def _records(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def _status(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([MOSAIC, "fleet", "status", "--json"], env=env, capture_output=True,
                         check=False).stdout  # fmt: skip
    try:
        doc: dict[str, object] = json.loads(out)
    except ValueError:
        return {}
    return doc


def _states(db: Path) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return [(str(s), r) for s, r in conn.execute("SELECT state, reason FROM outbox")]
    finally:
        conn.close()


def _delivering(db: Path) -> bool:
    return any(state == "delivering" for state, _ in _states(db))


def marathon(messages: int = MESSAGES, limit_s: float = 600.0) -> dict[str, int]:
    seed = int(time.time())
    rng = random.Random(seed)
    tmux_dir = Path(tempfile.mkdtemp(prefix="mb-", dir="/tmp"))
    socket = f"bench{uuid.uuid4().hex[:8]}"
    counts: Counter[str] = Counter(seed=seed, messages=messages)
    with tempfile.TemporaryDirectory(prefix="mosaic-bench-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp) / "home"
        (home / "fleet").mkdir(parents=True)
        lines = ["version: 1", "agents:"]
        for name, args in AGENTS.items():
            rec = str(Path(tmp) / f"{name}.rec")
            lines += [f"  - name: {name}", "    runtime: demo",
                      f"    args: {json.dumps([*args, '--record', rec])}"]  # fmt: skip
        (home / "fleet" / "roster.yaml").write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in base_env().items() if not k.startswith(("TMUX", "MOSAIC_"))}
        env.update(MOSAIC_HOME=str(home), TMUX_TMPDIR=str(tmux_dir), MOSAIC_TMUX_SOCKET=socket,
                   MOSAIC_FLEET_SUPERVISOR="tmux", HOME=tmp)  # fmt: skip
        db = home / "fleet" / "fleet.db"
        tmux = ["tmux", "-L", socket]
        wanted: dict[str, list[str]] = {name: [] for name in AGENTS}
        try:
            run_cmd([MOSAIC, "fleet", "start"], env=env)
            for i in range(messages):
                name = rng.choice(list(AGENTS))
                text = f"{name} #{i:04d} {rng.randrange(16**8):08x}"
                wanted[name].append(text)
                run_cmd([MOSAIC, "fleet", "send", "--queue", name, text], env=env)
            end = time.monotonic() + limit_s
            while time.monotonic() < end:
                done = sum(1 for state, _ in _states(db) if state == "delivered")
                if done == messages:
                    break
                time.sleep(rng.uniform(*FAULT_EVERY_S))
                waited = time.monotonic() + 5
                while not _delivering(db) and time.monotonic() < waited:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.5))
                fault = rng.choices(["watcher", "agent", "server"], weights=[6, 3, 1])[0]
                doc = _status(env)
                if fault == "watcher":
                    watcher = doc.get("watcher")
                    pid = watcher.get("pid") if isinstance(watcher, dict) else None
                    if pid:
                        os.kill(int(pid), signal.SIGKILL)
                        counts["watcher kills"] += 1
                elif fault == "agent":
                    rows = doc.get("agents")
                    rows = rows if isinstance(rows, list) else []
                    pids = [r["pid"] for r in rows if r.get("pid")]
                    if pids:
                        os.kill(int(rng.choice(pids)), signal.SIGKILL)
                        counts["agent kills"] += 1
                else:
                    subprocess.run([*tmux, "kill-server"], env=env, capture_output=True)
                    counts["server kills"] += 1
                # An operator's start: revives what a burst of quick crashes left failed.
                time.sleep(1.0)
                run_cmd([MOSAIC, "fleet", "start"], env=env, check=False)
        finally:
            subprocess.run([*tmux, "kill-server"], env=env, capture_output=True)
            shutil.rmtree(tmux_dir, ignore_errors=True)
        final = _states(db)
        counts["delivered"] = sum(1 for state, _ in final if state == "delivered")
        for _, reason in final:
            if reason and reason.startswith("recovered (row "):
                counts[f"decided by row {reason[len('recovered (row '):].split(')')[0]}"] += 1
        for name in AGENTS:
            got = _records(Path(tmp) / f"{name}.rec")
            counts["lost"] += len(set(wanted[name]) - set(got))
            counts["twice"] += len(got) - len(set(got))
            firsts = list(dict.fromkeys(got))
            counts["out of order"] += sum(
                1 for a, b in itertools.pairwise(firsts)
                if a in wanted[name] and b in wanted[name]
                and wanted[name].index(a) > wanted[name].index(b)
            )  # fmt: skip
    return dict(counts)


def run() -> list[Row]:
    if shutil.which("tmux") is None or not any("marathon" in a for a in sys.argv[1:]):
        return []  # minutes long: only when asked for by name
    counts = marathon()
    print(f"# outbox marathon: {json.dumps(counts)}", file=sys.stderr)
    total = float(counts["messages"])
    rows = [
        Row(f"outbox marathon: {what}", float(counts.get(what, 0)), "messages", total,
            unit="msgs", target=0.0)
        for what in ("lost", "twice", "out of order")
    ]  # fmt: skip
    delivered = float(counts["delivered"])
    return [*rows, Row("outbox marathon: delivered", delivered, "messages", total, unit="msgs")]


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else MESSAGES
    limit = float(sys.argv[2]) if len(sys.argv) > 2 else 600.0
    print(json.dumps(marathon(size, limit), indent=1))
