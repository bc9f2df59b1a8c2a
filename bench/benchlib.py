"""Shared bench machinery: every figure is a ratio against a baseline timed in the same run."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
MOSAIC = str(VENV_BIN / "mosaic")


@dataclass(frozen=True)
class Row:
    case: str
    value: float
    baseline_name: str
    baseline: float
    unit: str = "s"
    # Largest acceptable ratio value/baseline; None when the case only reports.
    target: float | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def ok(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target


def median_time(fn: Callable[[], object], repeat: int = 15, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def interleaved(measures: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median wall time of each measure, sampled in rounds that take every measure once, so
    that each sees the same machine load."""
    samples: dict[str, list[float]] = {k: [] for k in measures}
    for _ in range(repeat):
        for key, fn in measures.items():
            t0 = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def run_cmd(argv: Sequence[str], env: dict[str, str] | None = None, check: bool = True) -> None:
    subprocess.run(
        list(argv),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=check,
    )


def time_cmd(
    argv: Sequence[str], env: dict[str, str] | None = None, repeat: int = 15, check: bool = True
) -> float:
    return median_time(lambda: run_cmd(argv, env, check), repeat=repeat)


def base_env(**extra: str) -> dict[str, str]:
    """The caller's environment, minus what would make a run unlike a user's: an installed
    package has its bytecode compiled, so PYTHONDONTWRITEBYTECODE must not force every
    measured command to recompile its modules."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def rss_kib(pid: int) -> int:
    """Resident set size of one process, from /proc (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
