"""The systemd supervisor against the tmux supervisor, on a private user manager.

Fleet start of 20 agents (cold: no tmux server yet) under each supervisor, as the wall time
of `mosaic fleet start`; under systemd that includes the holder unit, 20 Type=notify agent
units each running `mosaic.unitexec` before its waiter takes over. And the RSS of each agent
unit's main process (the waiter the unit keeps), against a bare `sleep` for scale. Both are
reported, not judged: the 4 MiB per-agent target is read off the table.

The manager is started with the test harness (tests/systemd_harness.py), which needs root
and unshare; without them this case reports nothing.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, rss_kib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from systemd_harness import (
    ManagerUnavailable,
    UserManager,
    start_user_manager,
    stop_user_manager,
)

AGENTS = 20
ROUNDS = 3


def _roster() -> str:
    agents = "".join(f"  - name: a{i:02d}\n    runtime: idle\n" for i in range(AGENTS))
    return (
        "version: 1\nagents:\n" + agents
        + "runtimes:\n  idle:\n    command: [sleep, infinity]\n    processes: [sleep]\n"
    )  # fmt: skip


def _fleet_env(root: Path, supervisor: str) -> dict[str, str]:
    home = root / supervisor
    (home / "fleet").mkdir(parents=True)
    (home / "fleet" / "roster.yaml").write_text(_roster())
    tmux_dir = root / f"t-{supervisor}"
    tmux_dir.mkdir(mode=0o700)
    env = {k: v for k, v in base_env().items() if not k.startswith(("TMUX", "MOSAIC_"))}
    env.update(
        MOSAIC_HOME=str(home),
        TMUX_TMPDIR=str(tmux_dir),
        MOSAIC_TMUX_SOCKET=f"b{uuid.uuid4().hex[:8]}",
        MOSAIC_FLEET_SUPERVISOR=supervisor,
    )
    return env


def _fleet(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run([MOSAIC, "fleet", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"mosaic fleet {' '.join(args)}: {proc.stderr.strip()}")


def _time_start(env: dict[str, str]) -> float:
    """Median wall time of a cold `start`; each round ends with a whole-fleet stop."""
    samples = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        _fleet(env, "start")
        samples.append(time.perf_counter() - t0)
        _fleet(env, "stop")
    return statistics.median(samples)


def _unit_rss(m: UserManager, env: dict[str, str]) -> float:
    """Mean VmRSS (KiB) of the agent units' main processes, fleet running."""
    _fleet(env, "start")
    try:
        units = [f"mosaic-agent@a{i:02d}.service" for i in range(AGENTS)]
        out = m.systemctl("show", "-p", "MainPID", "--value", *units).stdout.split()
        pids = [int(p) for p in out if p.isdigit() and int(p) > 0]
        return statistics.mean(rss_kib(p) for p in pids)
    finally:
        _fleet(env, "stop")


def _sleep_rss() -> float:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.2)
        return float(rss_kib(proc.pid))
    finally:
        proc.kill()
        proc.wait()


def run() -> list[Row]:
    try:
        m = start_user_manager()
    except ManagerUnavailable as exc:
        print(f"# case_systemd skipped: {exc}", file=sys.stderr)
        return []
    root = Path(tempfile.mkdtemp(prefix="mb-", dir="/tmp"))
    try:
        tmux_env = _fleet_env(root, "tmux")
        sd_env = m.env_for(_fleet_env(root, "systemd"))
        _fleet(sd_env, "install")
        t_tmux = _time_start(tmux_env)
        t_sd = _time_start(sd_env)
        rss = _unit_rss(m, sd_env)
        base = _sleep_rss()
        _fleet(sd_env, "uninstall")
    finally:
        stop_user_manager(m)
        shutil.rmtree(root, ignore_errors=True)
    return [
        Row(f"systemd: fleet start ({AGENTS} agents)", t_sd, "tmux supervisor start", t_tmux),
        Row("systemd: unit main process RSS/agent", rss, "sleep", base, unit="KiB"),
    ]

