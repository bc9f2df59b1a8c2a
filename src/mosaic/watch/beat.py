"""The watcher's identity and heartbeat in one small run-state file (`Paths.watcher_heartbeat`):
its content is the watcher's pid and the start time of that process (so a reused pid is not
taken for the watcher), its mtime is the watcher's last tick. `status` reads it without
talking to the watcher or to either supervisor.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic.base import procs
from mosaic.base.fs import atomic_write


@dataclass(frozen=True)
class WatcherInfo:
    running: bool
    pid: int | None = None
    last_tick_age_s: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "state": "running" if self.running else "stopped",
            "pid": self.pid,
            "last_tick_age_s": self.last_tick_age_s,
        }


def publish(path: Path, pid: int) -> None:
    info = procs.info(pid)
    start = info.start_ticks if info is not None else 0
    atomic_write(path, f"{pid} {start}\n".encode())


def beat(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def withdraw(path: Path, pid: int) -> None:
    """Remove the file on a clean exit, unless another watcher has published since."""
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().split()[0]) == pid:
            path.unlink()


def read(path: Path, now: float | None = None) -> WatcherInfo:
    try:
        text = path.read_text()
        mtime = path.stat().st_mtime
        pid_text, start_text = text.split()[:2]
        pid, start = int(pid_text), int(start_text)
    except (OSError, ValueError):
        return WatcherInfo(False)
    info = procs.info(pid)
    if info is None or info.state in ("Z", "X") or (start and info.start_ticks != start):
        return WatcherInfo(False)
    age = max(0.0, (time.time() if now is None else now) - mtime)
    return WatcherInfo(True, pid, round(age, 2))
