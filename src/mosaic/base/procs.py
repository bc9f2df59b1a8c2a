"""Process facts from /proc (trees, command lines, who holds a flock) and the signalling
that stop and the restart-lock override need.

Measured: Codex and Claude Code survive the SIGHUP of `tmux kill-server`, so stopping an
agent means finding every process of the pane's tree — its descendants and anything left in
its session — signalling them, and confirming they are gone.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start_ticks: int
    comm: str


def info(pid: int) -> ProcInfo | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm is in parentheses and may itself contain spaces or parentheses.
    head, _, tail = raw.rpartition(")")
    comm = head.split("(", 1)[1] if "(" in head else ""
    f = tail.split()
    return ProcInfo(
        pid=pid,
        ppid=int(f[1]),
        pgid=int(f[2]),
        sid=int(f[3]),
        state=f[0],
        start_ticks=int(f[19]),
        comm=comm,
    )


def alive(pid: int) -> bool:
    p = info(pid)
    return p is not None and p.state not in ("Z", "X")


def pids() -> list[int]:
    """Every process id in /proc right now."""
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []


def all_procs() -> list[ProcInfo]:
    return [p for p in map(info, pids()) if p is not None]


def command(pid: int, limit: int = 1000) -> str | None:
    """`pid`'s command line, shell-quoted for people and cut at `limit` characters; None
    when it cannot be read (gone, a kernel thread, another user's)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return shlex.join(args)[:limit] if args else None


def holds_exclusive_flock(pid: int, st: os.stat_result) -> bool:
    """Whether `pid` has a descriptor on the inode `st` through which an exclusive flock is
    granted. The kernel lists only granted locks in fdinfo, so this is ownership as the
    kernel sees it, whatever any file content claims."""
    base = f"/proc/{pid}"
    try:
        names = os.listdir(f"{base}/fd")
    except OSError:
        return False
    for name in names:
        try:
            target = os.stat(f"{base}/fd/{name}")
            if (target.st_dev, target.st_ino) != (st.st_dev, st.st_ino):
                continue
            text = Path(f"{base}/fdinfo/{name}").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            # e.g. "lock:  1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF"; only WRITE, so
            # a shared (READ) probe is never mistaken for an owner.
            fields = line.split()
            if fields[:1] == ["lock:"] and fields[2:5] == ["FLOCK", "ADVISORY", "WRITE"]:
                return True
    return False


def exclusive_flock_holders(st: os.stat_result) -> list[int]:
    """Pids that /proc/locks names as holding an exclusive flock on an inode numbered like
    `st`'s. A hint only: the device is not compared (btrfs and overlayfs report another
    device there than in stat), and /proc/locks names the process that took the lock, which
    may have died leaving a forked child holding it; confirm with `holds_exclusive_flock`."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return []
    found: list[int] = []
    for line in text.splitlines():
        fields = line.split()
        # "->" lines are waiters, not holders; READ is a shared probe, not an owner.
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[3] != "WRITE":
            continue
        try:
            pid = int(fields[4])
            ino = int(fields[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if ino == st.st_ino and pid > 0 and pid not in found:
            found.append(pid)
    return found


def descendants(root: int, procs: list[ProcInfo]) -> list[int]:
    """Every process below `root` in `procs` (a snapshot), parents before their children."""
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    found: list[int] = []
    seen = {root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                found.append(child)
                stack.append(child)
    return found


def tree(root: int, procs: list[ProcInfo] | None = None) -> list[int]:
    """`root`, its descendants, and every process still in `root`'s session or group."""
    procs = all_procs() if procs is None else procs
    found = {root, *descendants(root, procs)}
    found |= {p.pid for p in procs if p.sid == root or p.pgid == root}
    return sorted(pid for pid in found if alive(pid))


def uptime_s(pid: int) -> float | None:
    """Seconds since `pid` started, from its start time in clock ticks since boot."""
    p = info(pid)
    if p is None:
        return None
    try:
        boot_uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return None
    return max(0.0, boot_uptime - p.start_ticks / _CLK_TCK)


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive; returns the survivors at the deadline."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    delay = 0.01
    while left and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        left = [p for p in left if alive(p)]
    return left


def terminate(pids: list[int], grace: float = 3.0, kill_wait: float = 2.0) -> list[int]:
    """SIGTERM, then SIGKILL what is left after `grace`; returns pids that survived both."""
    if not pids:
        return []
    signal_all(pids, signal.SIGTERM)
    signal_all(pids, signal.SIGCONT)
    left = wait_gone(pids, grace)
    if left:
        signal_all(left, signal.SIGKILL)
        left = wait_gone(left, kill_wait)
    return left


# Interpreters that run a program's script: their process is named after the script
# (argv[1]) as far as "which program is this" goes.
_INTERPRETER_PREFIXES = ("python", "node", "bun", "deno", "ruby", "perl")


def is_interpreter(name: str) -> bool:
    return name.startswith(_INTERPRETER_PREFIXES)


def argv(pid: int) -> list[str]:
    """The process's command line ([] when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode("utf-8", errors="replace") for part in raw.split(b"\0") if part]


def names(pid: int) -> set[str]:
    """What a process is called: its comm (a script run through its shebang is named after
    the script: aider's venv console script is `aider`, though tmux shows `python3.11`), its
    argv[0], and, when argv[0] is an interpreter, the script it runs (argv[1])."""
    found: set[str] = set()
    p = info(pid)
    if p is not None:
        found.add(p.comm)
    args = argv(pid)
    if args:
        found.add(os.path.basename(args[0]))
        if len(args) > 1 and is_interpreter(os.path.basename(args[0])):
            found.add(os.path.basename(args[1]))
    return found


def foreground(pid: int) -> int | None:
    """The foreground process group of the terminal `pid` runs on (tpgid), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw.rpartition(")")[2].split()
    tpgid = int(fields[5]) if len(fields) > 5 else -1
    return tpgid if tpgid > 0 else None
