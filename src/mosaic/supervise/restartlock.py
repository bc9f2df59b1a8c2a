"""The restart lock (SPEC §6): one restart at a time, instant hand-off, crash-safe.

Why this design (issue 6). The lock *is* an exclusive `flock` on `<home>/fleet/run/restart.lock`,
a file that is never deleted, renamed or replaced. Ownership is decided by the kernel alone,
so the interleavings that broke the old O_EXCL + timestamp + rename scheme cannot occur:

* there is no "stale" judgement and no wall-clock time involved: a dead owner's lock is
  released by the kernel when its last descriptor closes (that includes SIGKILL);
* nothing ever unlinks or renames the lock path, so every process locks the same inode;
* file *content* never decides anything; it is diagnostics for people (who holds it, since
  when), written in place by the owner while it holds the lock, and readers tolerate any
  garbage in it;
* a release is `flock(LOCK_UN)` on the releaser's own open file description, which cannot
  touch a lock held through another description: a late release cannot drop someone else's
  lock.

Waiting is a blocking `flock` in a helper thread while the caller waits on an Event with a
deadline, so a waiter is inside microseconds after the release (no polling tick). A waiter
that gives up hands its descriptor to the helper thread under a mutex; whichever of "helper
acquired" and "caller abandoned" happens first under that mutex wins, and an abandoned helper
that later obtains the lock closes its descriptor without ever entering the critical section.

Overriding a hung owner (after the max wait, counted from when the waiter began waiting)
*ends* that owner: the waiter finds the process that really holds the flock (its
/proc/<pid>/fdinfo shows a granted FLOCK on our inode), pins it with a pidfd, re-checks it is
still alive (so the pid was not recycled between the check and the pin), and sends SIGKILL
through the pidfd. The kernel then releases the lock and the waiter takes it through the
ordinary flock path. Mutual exclusion therefore never depends on the override: at every
instant at most one open file description holds the flock, and a process that lost the lock
through the override is dead, so it can neither run more of its critical section nor
release anything. The alternative, a "generation" scheme that lets the new owner in beside
a merely paused old one, was rejected because the old owner resumes inside its critical
section while the new one is inside its own.

The lock is reentrant per process: a process that holds it (any thread) re-enters at once
and the flock is released when the outermost holder leaves. A fork child never inherits
ownership: its copies of our descriptors are closed right after fork (closing, never
LOCK_UN, which would drop the parent's lock), and exec closes them anyway (O_CLOEXEC).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import select
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mosaic.base import procs
from mosaic.base.flock import open_lock_file
from mosaic.errors import ConfigError, OperationFailed

ENV_MAX_WAIT = "MOSAIC_FLEET_RESTART_LOCK_MAX_WAIT"
DEFAULT_MAX_WAIT = 30.0
# After SIGKILL the kernel frees the lock as soon as the process exits; a process that does
# not exit within this bound is stuck in the kernel (D state) and we report it, rather than
# pretend to own a lock that we do not hold.
KILL_GRACE = 10.0
# How long a waiter past its deadline keeps trying to identify a holder it cannot see
# (the lock is held, but by no process we can inspect) before it reports a failure.
IDENTIFY_GRACE = 2.0
_IDENTIFY_RETRY = 0.05
# Walks of the hung owner's descendants; each pass stops what it finds, so few are needed.
_DESCENDANT_PASSES = 5
_MAX_COMMAND = 1000

Warn = Callable[[str], None]


@dataclass(frozen=True)
class HolderInfo:
    """Who holds the restart lock, for people; fields are None when not known.

    `start_time` is the process start in clock ticks since boot (/proc/<pid>/stat field 22),
    which together with `pid` names one process even across pid reuse. `acquired_at` is
    wall-clock epoch seconds, shown to people and never used to decide anything.
    """

    pid: int | None
    start_time: int | None
    command: str | None
    acquired_at: float | None

    def describe(self) -> str:
        """"pid N, since T" for status lines; "holder unknown" when nothing is known."""
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.acquired_at is not None:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.acquired_at))
            parts.append(f"since {since}")
        return ", ".join(parts) or "holder unknown"

    def status_line(self) -> str:
        return f"restart in progress ({self.describe()})"

    def as_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "start_time": self.start_time,
            "command": self.command,
            "acquired_at": self.acquired_at,
        }


@dataclass(frozen=True)
class Acquired:
    """What happened while getting the lock, yielded by `restart_lock`."""

    path: Path
    waited: float  # seconds from the call to being inside
    reentrant: bool  # this process already held the lock; nothing was waited for
    overridden: HolderInfo | None  # the hung owner that was ended to get in, if any

    def progress(self) -> None:
        """Tell waiters the restart is moving (placeholder until progress is recorded)."""


def max_wait_from_env(env: Mapping[str, str] | None = None) -> float:
    """The override deadline in seconds from `$MOSAIC_FLEET_RESTART_LOCK_MAX_WAIT`.

    Unset or empty means the default; anything that is not a finite number >= 0 is a
    configuration error rather than a silent fallback, because a typo here would otherwise
    change when a running restart gets killed.
    """
    env = os.environ if env is None else env
    raw = env.get(ENV_MAX_WAIT, "").strip()
    if not raw:
        return DEFAULT_MAX_WAIT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{ENV_MAX_WAIT}={raw!r} is not a valid number of seconds "
            f"(expected a finite number >= 0, e.g. {DEFAULT_MAX_WAIT:g})"
        )
    return value


def _check_max_wait(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"restart lock max wait must be a finite number >= 0, got {value!r}")
    return float(value)


def _warn_stderr(message: str) -> None:
    print(f"mosaic: warning: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- process state


class _Held:
    """This process's ownership of one lock file; shared by reentrant entries."""

    def __init__(self, fd: int, key: tuple[int, int]) -> None:
        self.fd = fd
        self.key = key
        self.pid = os.getpid()
        self.count = 1


_registry: dict[tuple[int, int], _Held] = {}
# Every descriptor this module owns (held or still waiting), so a fork child can close its
# copies; guarded by _state_mutex.
_owned_fds: set[int] = set()
_state_mutex = threading.Lock()
# One fresh acquisition at a time per process: a second thread waits here and then
# re-enters the lock the first one got, instead of queueing a second flock behind its own
# process (which could only end in overriding itself).
_gate = threading.Lock()


def _after_fork_in_child() -> None:
    global _state_mutex, _gate
    _state_mutex = threading.Lock()
    _gate = threading.Lock()
    for fd in _owned_fds:
        with contextlib.suppress(OSError):
            os.close(fd)  # never LOCK_UN: that would drop the parent's lock
    _owned_fds.clear()
    _registry.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _own(fd: int) -> None:
    with _state_mutex:
        _owned_fds.add(fd)


def _close_owned(fd: int) -> None:
    # Forget before closing: once closed, the number may be reused by unrelated code.
    with _state_mutex:
        _owned_fds.discard(fd)
    os.close(fd)


def _reenter(key: tuple[int, int]) -> _Held | None:
    with _state_mutex:
        held = _registry.get(key)
        if held is None or held.pid != os.getpid():
            return None
        held.count += 1
        return held


# --------------------------------------------------------------------------- /proc helpers


def _proc_start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _proc_command(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return shlex.join(args)[:_MAX_COMMAND] if args else None


def _holds_flock(pid: int, st: os.stat_result) -> bool:
    """True if a descriptor of `pid` refers to our inode through a description that holds
    the flock: the kernel lists only *granted* locks in fdinfo, so this is ownership as
    the kernel sees it, not as any file content claims."""
    base = f"/proc/{pid}"
    try:
        names = os.listdir(f"{base}/fd")
    except OSError:
        return False
    for name in names:
        try:
            target = os.stat(f"{base}/fd/{name}")
        except OSError:
            continue
        if (target.st_dev, target.st_ino) != (st.st_dev, st.st_ino):
            continue
        try:
            info = Path(f"{base}/fdinfo/{name}").read_text()
        except OSError:
            continue
        for line in info.splitlines():
            fields = line.split()
            # Only WRITE: a status probe briefly holds a shared (READ) flock, and it must
            # never be mistaken for a restart owner, let alone killed as one.
            # e.g. "lock:  1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF"
            if fields[:1] == ["lock:"] and fields[2:5] == ["FLOCK", "ADVISORY", "WRITE"]:
                return True
    return False


def _flock_pids(st: os.stat_result) -> list[int]:
    """Pids that /proc/locks names as flock holders of an inode with our number.

    Only a hint (the device is not compared, because btrfs and overlayfs report a different
    device in stat than in /proc/locks); every candidate is verified with `_holds_flock`.
    """
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return []
    pids: list[int] = []
    for line in text.splitlines():
        fields = line.split()
        # "->" lines are waiters, not holders; READ is a status probe, not an owner.
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[3] != "WRITE":
            continue
        try:
            pid = int(fields[4])
            ino = int(fields[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if ino == st.st_ino and pid > 0 and pid not in pids:
            pids.append(pid)
    return pids


# --------------------------------------------------------------------------- diagnostics


# (pid, start time, command) of this process, read from /proc once: the record is written
# right after the lock is taken, which is on the hand-off path. Reset in a fork child.
_identity: tuple[int, int | None, str | None] | None = None


def _record_bytes() -> bytes:
    global _identity
    if _identity is None or _identity[0] != os.getpid():
        pid = os.getpid()
        _identity = (pid, _proc_start_time(pid), _proc_command(pid))
    pid, start, command = _identity
    now = time.time()
    record = {
        "pid": pid,
        "start_time": start,
        "command": command,
        "acquired_at": now,
        "acquired_at_local": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(now)),
        "note": "held while a flock is held on this file; see `mosaic fleet status`",
    }
    return (json.dumps(record) + "\n").encode()


def _write_record(fd: int) -> None:
    """Overwrite the diagnostics in place (never by rename: that would give the path a new
    inode and split the lock). Best effort: a full disk must not fail a restart."""
    data = _record_bytes()
    with contextlib.suppress(OSError):
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))


def _read_record(fd: int) -> HolderInfo | None:
    try:
        raw = os.pread(fd, 64 * 1024, 0)
        data = json.loads(raw.decode())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None

    def integer(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    pid = integer("pid")
    acquired = data.get("acquired_at")
    command = data.get("command")
    return HolderInfo(
        pid=pid if pid is not None and pid > 0 else None,
        start_time=integer("start_time"),
        command=command if isinstance(command, str) else None,
        acquired_at=float(acquired)
        if isinstance(acquired, int | float) and not isinstance(acquired, bool)
        else None,
    )


def _holder_info(pid: int, record: HolderInfo | None) -> HolderInfo:
    """Facts from /proc about a verified holder, plus the record's time when the record
    is about this very process (same pid and start time)."""
    start = _proc_start_time(pid)
    acquired = None
    if record is not None and record.pid == pid and record.start_time == start:
        acquired = record.acquired_at
    return HolderInfo(pid, start, _proc_command(pid), acquired)


def _candidates(fd: int, st: os.stat_result) -> tuple[HolderInfo | None, list[int]]:
    record = _read_record(fd)
    pids = [record.pid] if record is not None and record.pid is not None else []
    pids += [p for p in _flock_pids(st) if p not in pids]
    return record, pids


def current_holder(path: Path) -> HolderInfo | None:
    """Whether a restart holds the lock right now, and who; never waits.

    Probes with a non-blocking shared flock on a fresh descriptor: if it is granted,
    nobody holds the lock (the probe is dropped at once); if it is refused, the holder is
    identified from the diagnostics record when the kernel confirms that process really
    holds it, else from /proc/locks, else reported as unknown. A missing lock file means
    no restart ever ran here; a hostile lock path raises ConfigError.
    """
    try:
        fd = open_lock_file(path, create=False)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            return None
        st = os.fstat(fd)
        record, pids = _candidates(fd, st)
        for pid in pids:
            if _holds_flock(pid, st):
                return _holder_info(pid, record)
        return HolderInfo(None, None, None, None)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- waiting


class _Waiter:
    """A blocking flock in a helper thread, which the caller can stop waiting for."""

    _WAITING, _ACQUIRED, _FAILED, _ABANDONED = range(4)

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._mutex = threading.Lock()
        self._done = threading.Event()
        self._state = self._WAITING
        self._error: OSError | None = None
        thread = threading.Thread(target=self._run, name="mosaic-restart-lock", daemon=True)
        thread.start()

    def _run(self) -> None:
        error: OSError | None = None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            error = exc
        with self._mutex:
            if self._state == self._ABANDONED:
                # The caller has left; this descriptor is ours alone, so closing it drops
                # the lock we may just have got without entering any critical section.
                _close_owned(self._fd)
                return
            self._state = self._FAILED if error else self._ACQUIRED
            self._error = error
        self._done.set()

    def wait(self, timeout: float) -> bool:
        """True once the lock is ours; False when `timeout` passed first."""
        if not self._done.wait(min(max(0.0, timeout), threading.TIMEOUT_MAX)):
            return False
        if self._error is not None:
            raise OperationFailed(f"cannot lock the restart lock: {self._error}")
        return True

    def abandon(self) -> bool:
        """Stop waiting. True: the helper now owns the descriptor and will close it.
        False: the helper already finished, so the descriptor (and any lock) is the
        caller's to close."""
        with self._mutex:
            if self._state == self._WAITING:
                self._state = self._ABANDONED
                return True
            return False


def _all_pids() -> list[int]:
    """Every process, for the rare holder that neither the record nor /proc/locks names
    (e.g. a plain fork child that inherited a dead owner's descriptor)."""
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


@dataclass(frozen=True)
class _Victim:
    pid: int
    start_time: int | None


_Pinned = tuple[int, int, HolderInfo]  # (pidfd, pid, what we know about it)


def _pin(pid: int, st: os.stat_result, record: HolderInfo | None) -> _Pinned | None:
    """(pidfd, pid, info) if `pid` holds the flock now, else None.

    Order matters: the pidfd is opened first, then ownership is checked by pid, then the
    pidfd's process is checked to be still alive. A live process keeps its pid, so the
    process checked by pid is the one the pidfd pins, and a signal sent through the pidfd
    can reach no other process, whatever happens to the pid number later.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        if _holds_flock(pid, st):
            info = _holder_info(pid, record)
            if not select.select([pidfd], [], [], 0)[0]:  # readable = exited
                return pidfd, pid, info
    except BaseException:
        os.close(pidfd)
        raise
    os.close(pidfd)
    return None


def _pin_holder(fd: int, st: os.stat_result) -> _Pinned | None:
    """The process that holds the flock now, pinned; None if free or not found."""
    record, pids = _candidates(fd, st)
    for pid in pids:
        pinned = _pin(pid, st, record)
        if pinned is not None:
            return pinned
    for pid in _all_pids():
        if pid not in pids and _holds_flock(pid, st):
            pinned = _pin(pid, st, record)
            if pinned is not None:
                return pinned
    return None


def _wait_or_override(
    waiter: _Waiter,
    fd: int,
    st: os.stat_result,
    path: Path,
    deadline: float,
    max_wait: float,
    warn: Warn,
) -> HolderInfo | None:
    overridden: HolderInfo | None = None
    killed: _Victim | None = None
    unidentified_since: float | None = None
    while True:
        if waiter.wait(deadline - time.monotonic()):
            return overridden
        now = time.monotonic()
        pinned = _pin_holder(fd, st)
        if pinned is None:
            # Free by now (the helper is about to win) or held by a process we cannot see.
            if unidentified_since is None:
                unidentified_since = now
            elif now - unidentified_since > IDENTIFY_GRACE:
                raise OperationFailed(
                    f"restart lock {path} is held by a process mosaic cannot identify or "
                    f"signal (pids in /proc/locks: {_flock_pids(st) or 'none'}); "
                    "not overriding it"
                )
            deadline = now + _IDENTIFY_RETRY
            continue
        unidentified_since = None
        pidfd, pid, info = pinned
        try:
            if waiter.wait(0):
                return overridden  # released while we looked (maybe to us): nobody to end
            if pid == os.getpid():
                raise OperationFailed(
                    f"restart lock {path} is held by this process through another "
                    "descriptor; refusing to wait for or override itself"
                )
            victim = _Victim(pid, info.start_time)
            if victim == killed:
                raise OperationFailed(
                    f"restart lock {path}: pid {pid} still holds it {KILL_GRACE:g} s after "
                    "SIGKILL (stuck in the kernel?); giving up"
                )
            if killed is not None:
                # After our override another waiter got in first: a new, live owner,
                # which gets a full max wait of its own before it counts as hung.
                killed = None
                deadline = now + max_wait
                continue
            what = f"pid {pid}" + (f" ({info.command})" if info.command else "")
            warn(
                f"restart lock {path} is still held by {what} after waiting the max wait "
                f"of {max_wait:g} s (${ENV_MAX_WAIT}); overriding it by ending that "
                "process, and the processes it started, with SIGKILL"
            )
            try:
                # Stopped first, so it starts nothing new while its tree is gathered.
                signal.pidfd_send_signal(pidfd, signal.SIGSTOP)
                descendants = _freeze_descendants(pid)
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                finally:
                    _kill_pinned(descendants)  # never left stopped, whatever the owner did
            except ProcessLookupError:
                pass  # it exited on its own meanwhile; the kernel frees the lock either way
            except PermissionError as exc:
                raise OperationFailed(
                    f"restart lock {path} is held by pid {pid}, which mosaic may not "
                    f"signal ({exc.strerror}); not overriding it"
                ) from exc
        finally:
            os.close(pidfd)
        killed = victim
        overridden = info
        deadline = time.monotonic() + KILL_GRACE


def _freeze_descendants(root: int) -> list[int]:
    """Pidfds of every descendant of the (stopped) `root`, each stopped once pinned.

    A hung restart is usually hung *in* a child (a tmux client stuck on a wedged server, a
    systemctl waiting on a job); ending only the owner would leave that child behind for
    ever. Only descendants: the owner's process group or session may hold the user's shell.
    A descendant is pinned by a pidfd and then checked to be the process seen in the
    snapshot (same start time), so a recycled pid is never signalled; stopping each one as
    it is pinned keeps it from forking, and the walk repeats until it finds nobody new.
    """
    pinned: dict[int, int] = {}
    for _ in range(_DESCENDANT_PASSES):
        listing = procs.all_procs()
        snapshot = {p.pid: p for p in listing}
        new = [pid for pid in procs.descendants(root, listing) if pid not in pinned]
        if not new:
            break
        for pid in new:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue  # gone already
            now = procs.info(pid)
            if now is None or now.start_ticks != snapshot[pid].start_ticks:
                os.close(pidfd)
                continue
            pinned[pid] = pidfd
            with contextlib.suppress(ProcessLookupError, PermissionError):
                signal.pidfd_send_signal(pidfd, signal.SIGSTOP)
    return list(pinned.values())


def _kill_pinned(pidfds: list[int]) -> None:
    for pidfd in pidfds:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        os.close(pidfd)


def _lock(
    fd: int, st: os.stat_result, path: Path, t0: float, max_wait: float, warn: Warn
) -> HolderInfo | None:
    """Take the flock on `fd`; on any failure `fd` is closed (or left to the helper)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        pass
    except BaseException:
        _close_owned(fd)
        raise
    waiter = _Waiter(fd)
    try:
        return _wait_or_override(waiter, fd, st, path, t0 + max_wait, max_wait, warn)
    except BaseException:
        if not waiter.abandon():
            _close_owned(fd)  # the helper finished first: the descriptor (and lock) is ours
        raise


def _acquire(path: Path, max_wait: float, warn: Warn) -> tuple[_Held, Acquired]:
    t0 = time.monotonic()
    fd = open_lock_file(path)
    _own(fd)
    try:
        st = os.fstat(fd)
        if st.st_nlink != 1:
            # A hard link would make the diagnostics overwrite some other file's content.
            raise ConfigError(
                f"lock file {path} has {st.st_nlink} hard links; refusing to write to it: "
                "remove it (mosaic recreates it)"
            )
        key = (st.st_dev, st.st_ino)
        held = _reenter(key)
        if held is None:
            _gate.acquire()
    except BaseException:
        _close_owned(fd)
        raise
    if held is not None:
        _close_owned(fd)
        return held, Acquired(path, time.monotonic() - t0, True, None)
    try:
        held = _reenter(key)  # another thread of ours may have got in while we queued
        if held is not None:
            _close_owned(fd)
            return held, Acquired(path, time.monotonic() - t0, True, None)
        overridden = _lock(fd, st, path, t0, max_wait, warn)
        held = _Held(fd, key)
        with _state_mutex:
            _registry[key] = held
    finally:
        _gate.release()
    _write_record(fd)
    return held, Acquired(path, time.monotonic() - t0, False, overridden)


def _release(held: _Held) -> None:
    with _state_mutex:
        if held.pid != os.getpid() or _registry.get(held.key) is not held:
            return  # a fork child leaving its parent's block: the lock is not ours
        held.count -= 1
        if held.count:
            return
        del _registry[held.key]
        _owned_fds.discard(held.fd)
    try:
        with contextlib.suppress(OSError):
            os.ftruncate(held.fd, 0)  # the record describes holders, and we are done
        # Explicit unlock: a child forked for exec may still have a copy of the descriptor
        # for a moment, and closing ours alone would leave the lock held until its exec.
        fcntl.flock(held.fd, fcntl.LOCK_UN)
    finally:
        os.close(held.fd)


@contextmanager
def restart_lock(
    path: Path,
    *,
    max_wait: float | None = None,
    warn: Warn | None = None,
) -> Iterator[Acquired]:
    """Hold the restart lock for the duration of the block.

    Waits without polling for the current holder to finish; after `max_wait` seconds
    (default `max_wait_from_env()`, counted from this call) a holder that still has it is
    ended with SIGKILL after verifying it is the holder, with a warning through `warn`
    (default: a line on stderr). Raises ConfigError for a bad max wait or a hostile lock
    path, OperationFailed when the lock cannot be obtained even by overriding.
    Re-entering in a process that already holds the lock returns at once.
    """
    budget = max_wait_from_env() if max_wait is None else _check_max_wait(max_wait)
    held, acquired = _acquire(path, budget, warn or _warn_stderr)
    try:
        yield acquired
    finally:
        _release(held)
