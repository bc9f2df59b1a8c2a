"""Restart lock: hand-off latency, dead-owner recovery and override timing, across processes.

Targets are absolute (hand-off <= 20 ms, dead owner -> next owner inside <= 1 s), but the
project reports every figure as a ratio against a baseline timed in the same run. So each
row's baseline is the kernel's own notification for the same event between two Python
processes, and its target ratio is `absolute target / that baseline`: the row passes
exactly when the absolute target is met, while the ratio still shows how close the lock is
to the cost of a bare wake-up on this machine (a slow machine raises both together).

* hand-off: release -> waiter inside, against a pipe write -> blocked reader woken;
* dead owner: SIGKILL of the owner -> waiter inside, against SIGKILL -> a pidfd watcher in
  another process woken;
* hand-off against the old design (polling every 250 ms), simulated in the same run;
* override: an owner makes progress for twice the max wait, then hangs; the time from its
  last step to the waiter being inside, against the max wait itself (1.0 would be exact;
  the waiter reads the record every max_wait/20, and ending the owner takes a moment).

All timestamps are CLOCK_MONOTONIC, which is one clock for all processes on Linux.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from benchlib import Row, base_env

HANDOFF_TARGET_S = 0.020
DEAD_OWNER_TARGET_S = 1.0
HANDOFF_ROUNDS = 31
DEAD_ROUNDS = 9
OLD_ROUNDS = 8
OLD_POLL_S = 0.25
OVERRIDE_ROUNDS = 5
OVERRIDE_MAX_WAIT_S = 0.5
OVERRIDE_TARGET = 1.5  # max wait + look interval + ending the owner, on a loaded machine

CONTENDER = r"""
import sys, time
from pathlib import Path
from mosaic.supervise.restartlock import restart_lock

lock = Path(sys.argv[1])
for line in sys.stdin:
    print("waiting", flush=True)
    with restart_lock(lock):
        print("in", time.monotonic(), flush=True)
        sys.stdin.readline()
        t = time.monotonic()
    print("out", t, flush=True)
"""

PROGRESSER = r"""
import sys, time
from pathlib import Path
from mosaic.supervise.restartlock import restart_lock

with restart_lock(Path(sys.argv[1])) as held:
    print("in", time.monotonic(), flush=True)
    sys.stdin.readline()
    for _ in range(int(sys.argv[2])):
        time.sleep(float(sys.argv[3]))
        held.progress()
    print("last", time.monotonic(), flush=True)
    sys.stdin.read()  # hung, holding the lock
"""

PIPE_READER = r"""
import os, time
while os.read(0, 1):
    print("in", time.monotonic(), flush=True)
"""

PIDFD_WATCHER = r"""
import os, select, sys, time
fd = os.pidfd_open(int(sys.argv[1]))
print("ready", flush=True)
select.select([fd], [], [])
print("in", time.monotonic(), flush=True)
"""

OLD_WAITER = r"""
import os, sys, time
path = sys.argv[1]
for line in sys.stdin:
    print("waiting", flush=True)
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            time.sleep(float(sys.argv[2]))
    print("in", time.monotonic(), flush=True)
    os.close(fd)
    os.unlink(path)
"""


class _Peer:
    """A helper process spoken to over pipes, with line reads that cannot hang the bench."""

    def __init__(
        self, source: str, *args: str, max_wait: float = 600, quiet: bool = False
    ) -> None:
        env = base_env(MOSAIC_FLEET_RESTART_LOCK_MAX_WAIT=str(max_wait))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", source, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None,  # the override's expected warning
            env=env,
        )
        self.pid = self.proc.pid
        self._buf = b""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def line(self, timeout: float = 20.0) -> list[str]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"bench helper {self.pid} said nothing for {timeout}s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError(f"bench helper {self.pid} exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode().split()

    def stamp(self, word: str, timeout: float = 20.0) -> float:
        fields = self.line(timeout)
        assert fields[0] == word, fields
        return float(fields[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def _peers() -> Iterator[list[_Peer]]:
    started: list[_Peer] = []
    try:
        yield started
    finally:
        for p in started:
            p.close()


def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a setup condition (not a measured interval) with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("bench setup condition not reached")
        time.sleep(0.0005)


def _blocked_on_lock(pid: int, ino: int) -> bool:
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        if (
            len(f) >= 7
            and f[1:3] == ["->", "FLOCK"]
            and int(f[5]) == pid
            and int(f[6].rsplit(":", 1)[1]) == ino
        ):
            return True
    return False


def _sleeping(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "S"


def _handoff(lock: Path) -> list[float]:
    """Two contenders alternate: the holder releases only once the other is queued."""
    samples: list[float] = []
    with _peers() as peers:
        a, b = _Peer(CONTENDER, str(lock)), _Peer(CONTENDER, str(lock))
        peers += [a, b]
        a.send("acquire")
        assert a.line()[0] == "waiting"
        a.stamp("in")
        ino = lock.stat().st_ino
        holder, waiter = a, b
        for _ in range(HANDOFF_ROUNDS):
            waiter.send("acquire")
            assert waiter.line()[0] == "waiting"
            _until(partial(_blocked_on_lock, waiter.pid, ino))
            holder.send("release")
            t_out = holder.stamp("out")
            t_in = waiter.stamp("in")
            samples.append(t_in - t_out)
            holder, waiter = waiter, holder
        holder.send("release")
        holder.stamp("out")
    return samples


def _pipe_wakeup() -> list[float]:
    samples: list[float] = []
    with _peers() as peers:
        reader = _Peer(PIPE_READER)
        peers.append(reader)
        assert reader.proc.stdin is not None
        fd = reader.proc.stdin.fileno()
        for _ in range(HANDOFF_ROUNDS):
            _until(partial(_sleeping, reader.pid))
            t0 = time.monotonic()
            os.write(fd, b"x")
            samples.append(reader.stamp("in") - t0)
    return samples


def _dead_owner(lock: Path) -> list[float]:
    samples: list[float] = []
    with _peers() as peers:
        waiter = _Peer(CONTENDER, str(lock))
        peers.append(waiter)
        for _ in range(DEAD_ROUNDS):
            owner = _Peer(CONTENDER, str(lock))
            peers.append(owner)
            owner.send("acquire")
            assert owner.line()[0] == "waiting"
            owner.stamp("in")
            ino = lock.stat().st_ino
            waiter.send("acquire")
            assert waiter.line()[0] == "waiting"
            _until(partial(_blocked_on_lock, waiter.pid, ino))
            t_kill = time.monotonic()
            os.kill(owner.pid, signal.SIGKILL)
            samples.append(waiter.stamp("in") - t_kill)
            owner.close()
            waiter.send("release")
            waiter.stamp("out")
    return samples


def _death_notice() -> list[float]:
    samples: list[float] = []
    with _peers() as peers:
        for _ in range(DEAD_ROUNDS):
            victim = _Peer("import sys; sys.stdin.read()")
            watcher = _Peer(PIDFD_WATCHER, str(victim.pid))
            peers += [victim, watcher]
            assert watcher.line()[0] == "ready"
            _until(partial(_sleeping, watcher.pid))
            t_kill = time.monotonic()
            os.kill(victim.pid, signal.SIGKILL)
            samples.append(watcher.stamp("in") - t_kill)
            victim.close()
            watcher.close()
    return samples


def _old_polling(directory: Path) -> list[float]:
    """The original design's wait: O_EXCL create retried every 250 ms."""
    rng = random.Random(6)
    path = directory / "old.lock"
    samples: list[float] = []
    with _peers() as peers:
        waiter = _Peer(OLD_WAITER, str(path), str(OLD_POLL_S))
        peers.append(waiter)
        for _ in range(OLD_ROUNDS):
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            waiter.send("go")
            assert waiter.line()[0] == "waiting"
            time.sleep(rng.uniform(0.0, OLD_POLL_S))  # the release lands at a random phase
            t_out = time.monotonic()
            os.unlink(path)
            samples.append(waiter.stamp("in") - t_out)
            _until(lambda: not path.exists())
    return samples


def _override(lock: Path) -> list[float]:
    """Last progress of a then-hung owner -> the waiter inside (after ending it)."""
    samples: list[float] = []
    steps, gap = 10, OVERRIDE_MAX_WAIT_S / 5
    with _peers() as peers:
        for _ in range(OVERRIDE_ROUNDS):
            owner = _Peer(PROGRESSER, str(lock), str(steps), str(gap))
            peers.append(owner)
            owner.stamp("in")
            waiter = _Peer(CONTENDER, str(lock), max_wait=OVERRIDE_MAX_WAIT_S, quiet=True)
            peers.append(waiter)
            waiter.send("acquire")
            assert waiter.line()[0] == "waiting"
            ino = lock.stat().st_ino
            _until(partial(_blocked_on_lock, waiter.pid, ino))
            owner.send("go")
            t_last = owner.stamp("last")
            samples.append(waiter.stamp("in", timeout=30) - t_last)
            waiter.send("release")
            waiter.stamp("out")
            owner.close()
            waiter.close()
    return samples


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="mosaic-bench-lock-") as tmp:
        directory = Path(tmp)
        lock = directory / "fleet" / "run" / "restart.lock"
        handoff = _handoff(lock)
        pipe = _pipe_wakeup()
        dead = _dead_owner(lock)
        notice = _death_notice()
        old = _old_polling(directory)
        override = _override(lock)
    h_med, h_max = statistics.median(handoff), max(handoff)
    p_med = statistics.median(pipe)
    d_med, d_max = statistics.median(dead), max(dead)
    n_med = statistics.median(notice)
    o_med = statistics.median(old)
    return [
        Row("restartlock hand-off (median)", h_med, "pipe wake-up", p_med,
            target=HANDOFF_TARGET_S / p_med),
        Row(f"restartlock hand-off (worst of {HANDOFF_ROUNDS})", h_max, "pipe wake-up", p_med,
            target=HANDOFF_TARGET_S / p_med),
        Row("restartlock dead owner -> next in (median)", d_med, "pidfd death notice", n_med,
            target=DEAD_OWNER_TARGET_S / n_med),
        Row(f"restartlock dead owner -> next in (worst of {DEAD_ROUNDS})", d_max,
            "pidfd death notice", n_med, target=DEAD_OWNER_TARGET_S / n_med),
        # The old design's hand-off, simulated above; at least 10x better is the bar.
        Row("restartlock hand-off vs old 250ms polling", h_med, "old polling hand-off", o_med,
            target=0.1),
        Row("restartlock last progress -> override (median)", statistics.median(override),
            "max wait", OVERRIDE_MAX_WAIT_S, target=OVERRIDE_TARGET),
        Row(f"restartlock last progress -> override (worst {OVERRIDE_ROUNDS})",
            max(override), "max wait", OVERRIDE_MAX_WAIT_S, target=OVERRIDE_TARGET),
    ]
