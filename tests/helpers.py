"""Test helpers shared by every test module: polling with a deadline, running the CLI."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

MOSAIC = [sys.executable, "-m", "mosaic"]


def _pytest_timeout() -> float:
    """pytest-timeout's per-test limit, read from pyproject.toml (its one copy)."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    options = tomllib.loads(pyproject.read_text())["tool"]["pytest"]["ini_options"]
    return float(options["timeout"])


PYTEST_TIMEOUT_S = _pytest_timeout()
MAX_DEADLINE_S = PYTEST_TIMEOUT_S - 20
"""The longest deadline a test may set itself: a hang must fail with the test's own message
(what it waited for), not with pytest-timeout's stack dump."""


def deadline(seconds: float) -> float:
    """`seconds`, refused when it would outlast pytest's own timeout."""
    if not 0 < seconds <= MAX_DEADLINE_S:
        raise ValueError(
            f"a test deadline of {seconds} s must be within (0, {MAX_DEADLINE_S:g}] s, "
            f"below pytest's timeout of {PYTEST_TIMEOUT_S:g} s"
        )
    return seconds


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "",
) -> T:
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    end = time.monotonic() + deadline(timeout)
    last = predicate()
    while not last:
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)
        last = predicate()
    assert last is not None
    return last


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def run_mosaic(
    args: Sequence[str],
    env: Mapping[str, str],
    input: str | bytes | None = None,
    timeout: float = 60.0,
    cwd: Path | None = None,
) -> Result:
    """Run `python -m mosaic ARGS` as a user would, with the test's private environment."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [*MOSAIC, *args],
        env=dict(env),
        input=data,
        capture_output=True,
        timeout=deadline(timeout),
        cwd=cwd,
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); look at its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def lock_is_free(lock: Path) -> bool:
    """Probe an flock through a fresh open file description; never blocks."""
    fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
