"""The restart lock: one restart at a time across processes, prompt hand-off, crash-safe,
and a hung owner overridden only when it has stopped making progress
(docs/architecture.md, "The restart lock").

Ownership is an exclusive `flock` on `<run>/restart.lock`, a file that is never deleted,
renamed or replaced, so every process locks the same inode and the kernel alone decides who
owns it: a dead owner's lock goes with its last descriptor (SIGKILL included), and a release
is `LOCK_UN` on the releaser's own open file description, which cannot drop a lock held
through another one (a late release never frees the next owner's lock).

Waiting is a blocking `flock` in a helper thread while the caller waits on an Event, so a
waiter is inside as soon as the lock is released, with no polling tick. A waiter that gives
up (Ctrl-C) hands its descriptor to the helper, which closes it without entering if it gets
the lock later.

The file's content is a record for people and for waiters: who holds the lock, since when,
and a progress counter that the owner bumps after each step (`Held.progress`: each agent
stopped or started). A waiter measures "no progress" on its own monotonic clock from the
last moment it saw the record change, so the content can only postpone an override, never
hasten it; a restart of a large fleet that keeps going is never taken for a hung one.

Overriding ends the owner: the waiter finds the process that really holds the flock (its
/proc fdinfo shows the granted lock on our inode, whatever the record says), pins it with a
pidfd, checks it is still that process, stops it, stops and pins its descendants (a hung
restart usually hangs in a child: a tmux client, a systemctl), and SIGKILLs them all through
their pidfds; never its process group or session, which may hold the user's shell. The
kernel then frees the lock and the waiter gets it the ordinary way, so mutual exclusion never
rests on the override: an owner that lost the lock is dead and can neither go on nor release.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import select
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
# After SIGKILL the kernel frees the lock as soon as the process exits; one that has not
# exited by then is stuck in the kernel (D state), and we say so rather than pretend.
KILL_GRACE = 10.0
# How long a waiter past its deadline keeps trying to find a holder it cannot see (the
# lock is held, but by no process we can inspect) before it reports a failure.
IDENTIFY_GRACE = 2.0
_IDENTIFY_RETRY = 0.05
# Walks of the hung owner's descendants; each pass stops what it finds, so few are needed.
_DESCENDANT_PASSES = 5
# The record is always written whole at this size (JSON padded with spaces): rewriting it in
# place then never shifts bytes under a reader, and a torn read just fails to parse.
RECORD_SIZE = 2048
_COMMAND_LIMIT = 1000

Warn = Callable[[str], None]


@dataclass(frozen=True)
class HolderInfo:
    """Who holds the restart lock, for people; fields are None when not known.

    `start_time` is the process start in clock ticks since boot, which with `pid` names one
    process across pid reuse. `acquired_at` (epoch seconds) and `progress` (steps the
    owner reported) come from the record, and only when it describes this very process.
    """

    pid: int | None
    start_time: int | None
    command: str | None
    acquired_at: float | None
    progress: int | None = None

    def describe(self) -> str:
        """"pid N, since T, K steps done" for status lines; "holder unknown" when nothing
        is known."""
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.acquired_at is not None:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.acquired_at))
            parts.append(f"since {since}")
        if self.progress:
            parts.append(f"{self.progress} step{'s' if self.progress != 1 else ''} done")
        return ", ".join(parts) or "holder unknown"

    def status_line(self) -> str:
        return f"restart in progress ({self.describe()})"

    def as_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "start_time": self.start_time,
            "command": self.command,
            "acquired_at": self.acquired_at,
            "progress": self.progress,
        }


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


def look_interval(max_wait: float) -> float:
    """How often a waiter reads the record for progress: an override comes between
    `max_wait` and `max_wait` plus this after the owner's last step."""
    return min(1.0, max(0.01, max_wait / 20))


# --------------------------------------------------------------------------- the record


def _encode(record: dict[str, object]) -> bytes:
    data = json.dumps(record).encode()
    if len(data) >= RECORD_SIZE:
        record = {**record, "command": None}
        data = json.dumps(record).encode()
    return data.ljust(RECORD_SIZE - 1) + b"\n"


def _read_record(fd: int) -> dict[str, object] | None:
    try:
        data = json.loads(os.pread(fd, RECORD_SIZE, 0).decode())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _int(record: dict[str, object], key: str) -> int | None:
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(record: dict[str, object], key: str) -> float | None:
    value = record.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _token(fd: int) -> tuple[object, ...] | None:
    """What a waiter compares to see movement: any change (a step, a new owner) counts."""
    record = _read_record(fd)
    if record is None:
        return None
    return (_int(record, "pid"), _int(record, "start_time"), _float(record, "acquired_at"),
            _int(record, "progress"))  # fmt: skip


def _holder_info(pid: int, fd: int) -> HolderInfo:
    """/proc's facts about a verified holder, plus the record's when it is about this very
    process (same pid and start time)."""
    proc = procs.info(pid)
    start = proc.start_ticks if proc is not None else None
    record = _read_record(fd) or {}
    mine = _int(record, "pid") == pid and start is not None and _int(record, "start_time") == start
    return HolderInfo(
        pid,
        start,
        procs.command(pid, _COMMAND_LIMIT),
        _float(record, "acquired_at") if mine else None,
        _int(record, "progress") if mine else None,
    )


def _candidates(fd: int, st: os.stat_result) -> list[int]:
    """Likely holders, cheapest first: the record's pid, then /proc/locks' (hints only)."""
    record = _read_record(fd) or {}
    pid = _int(record, "pid")
    found = [pid] if pid is not None and pid > 0 else []
    return found + [p for p in procs.exclusive_flock_holders(st) if p not in found]


def current_holder(path: Path) -> HolderInfo | None:
    """Whether a restart holds the lock right now, and who; never waits.

    Probes with a non-blocking shared flock on a fresh descriptor: granted means nobody
    holds it (the probe is dropped at once); refused means someone does, named by the
    record or /proc/locks once the kernel confirms that process holds it, else unknown. A
    missing lock file means no restart ever ran here; a hostile lock path is a ConfigError.
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
        for pid in _candidates(fd, st):
            if procs.holds_exclusive_flock(pid, st):
                return _holder_info(pid, fd)
        return HolderInfo(None, None, None, None)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- holding


class Held:
    """The restart lock, held: what `restart_lock` yields."""

    def __init__(self, fd: int, path: Path, waited: float, overridden: HolderInfo | None) -> None:
        self.path = path
        self.waited = waited  # seconds from the call to being inside
        self.overridden = overridden  # the hung owner that was ended to get in, if any
        self._fd: int | None = fd
        self._mutex = threading.Lock()  # progress may be reported from worker threads
        proc = procs.info(os.getpid())
        now = time.time()
        self._record: dict[str, object] = {
            "pid": os.getpid(),
            "start_time": proc.start_ticks if proc is not None else None,
            "command": procs.command(os.getpid(), _COMMAND_LIMIT),
            "acquired_at": now,
            "acquired_at_local": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(now)),
            "progress": 0,
            "progress_at": None,
            "note": "a restart holds a flock on this file; see `mosaic fleet status`",
        }
        self._write()
        with contextlib.suppress(OSError):
            os.ftruncate(fd, RECORD_SIZE)  # whatever was there before is gone

    def progress(self) -> None:
        """Tell waiters the restart is moving: call after each step (an agent stopped or
        started). A no-op once the lock is released."""
        with self._mutex:
            if self._fd is None:
                return
            steps = _int(self._record, "progress") or 0
            self._record = {**self._record, "progress": steps + 1, "progress_at": time.time()}
            self._write()

    def _write(self) -> None:
        """In place, never by rename (a new inode would split the lock). Best effort: a
        full disk must not fail a restart (its waiters then just see no progress)."""
        assert self._fd is not None
        with contextlib.suppress(OSError):
            os.pwrite(self._fd, _encode(self._record), 0)

    def _release(self) -> None:
        with self._mutex:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # the record describes holders, and we are done
            # Explicit: a child forked for exec may still have a copy of the descriptor for
            # a moment, and closing ours alone would leave the lock held until its exec.
            fcntl.flock(fd, fcntl.LOCK_UN)
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
        threading.Thread(target=self._run, name="mosaic-restart-lock", daemon=True).start()

    def _run(self) -> None:
        error: OSError | None = None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            error = exc
        with self._mutex:
            if self._state == self._ABANDONED:
                # The caller has left and this descriptor is ours alone: closing it drops
                # the lock we may just have got, without entering.
                os.close(self._fd)
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
        False: the helper finished first, so the descriptor (and lock) is the caller's."""
        with self._mutex:
            if self._state == self._WAITING:
                self._state = self._ABANDONED
                return True
            return False


_Pinned = tuple[int, HolderInfo]  # (pidfd, what we know about the process)


def _pin(pid: int, fd: int, st: os.stat_result) -> _Pinned | None:
    """(pidfd, info) if `pid` holds the flock now, else None.

    The pidfd is opened first, then ownership is checked by pid, then the pidfd's process
    is checked to be alive: a live process keeps its pid, so the process checked is the one
    pinned, and a signal through the pidfd can reach no other, whatever the pid later means.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        if procs.holds_exclusive_flock(pid, st) and not select.select([pidfd], [], [], 0)[0]:
            return pidfd, _holder_info(pid, fd)
    except BaseException:
        os.close(pidfd)
        raise
    os.close(pidfd)
    return None


def _pin_holder(fd: int, st: os.stat_result) -> _Pinned | None:
    """The process holding the flock now, pinned; None if free or not found. Every process
    is looked at when the hints miss (a fork child holding a dead locker's descriptor)."""
    hinted = _candidates(fd, st)
    for pid in hinted + [p for p in procs.pids() if p not in hinted]:
        if pid in hinted or procs.holds_exclusive_flock(pid, st):
            pinned = _pin(pid, fd, st)
            if pinned is not None:
                return pinned
    return None


def _freeze_descendants(root: int) -> list[int]:
    """Pidfds of every descendant of the (stopped) `root`, each stopped once pinned.

    A descendant is pinned by a pidfd and then checked to be the process seen in the
    snapshot (same start time), so a recycled pid is never signalled; stopping each as it
    is pinned keeps it from forking, and the walk repeats until it finds nobody new.
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


def _end(pidfd: int, pid: int, path: Path) -> None:
    """SIGKILL the pinned owner and its descendants (stopped first, so it starts nothing
    new while its tree is gathered)."""
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGSTOP)
        descendants = _freeze_descendants(pid)
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        finally:
            for child in descendants:  # never left stopped, whatever the owner did
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    signal.pidfd_send_signal(child, signal.SIGKILL)
                os.close(child)
    except ProcessLookupError:
        pass  # it exited on its own meanwhile; the kernel frees the lock either way
    except PermissionError as exc:
        raise OperationFailed(
            f"restart lock {path} is held by pid {pid}, which mosaic may not signal "
            f"({exc.strerror}); not overriding it"
        ) from exc


def _wait_or_override(
    waiter: _Waiter, fd: int, st: os.stat_result, path: Path, max_wait: float, warn: Warn
) -> HolderInfo | None:
    """Wait for the lock; end a holder that shows no progress for `max_wait`. Returns the
    holder that was ended, if one was."""
    look_every = look_interval(max_wait)
    seen = _token(fd)
    due = time.monotonic() + max_wait  # when the holder counts as hung, unless it moves
    overridden: HolderInfo | None = None
    ended: tuple[int, int | None] | None = None  # (pid, start) SIGKILLed, not yet gone
    unidentified_since: float | None = None
    while True:
        if waiter.wait(min(due - time.monotonic(), look_every)):
            return overridden
        now = time.monotonic()
        token = _token(fd)
        if token is not None and token != seen:
            # A step, or a new owner (maybe one that got in after our override): it gets
            # a full max wait from now.
            seen, due, ended, unidentified_since = token, now + max_wait, None, None
            continue
        if now < due:
            continue
        pinned = _pin_holder(fd, st)
        if pinned is None:
            # Free by now (the helper is about to win) or held by a process we cannot see.
            unidentified_since = unidentified_since or now
            if now - unidentified_since > IDENTIFY_GRACE:
                raise OperationFailed(
                    f"restart lock {path} is held by a process mosaic cannot identify or "
                    f"signal (pids in /proc/locks: {procs.exclusive_flock_holders(st) or 'none'}"
                    "); not overriding it"
                )
            due = now + _IDENTIFY_RETRY
            continue
        unidentified_since = None
        pidfd, info = pinned
        assert info.pid is not None
        try:
            if waiter.wait(0):
                return overridden  # released while we looked (maybe to us): nobody to end
            if info.pid == os.getpid():
                raise _self_held(path)
            if ended is not None:
                if ended == (info.pid, info.start_time):
                    raise OperationFailed(
                        f"restart lock {path}: pid {info.pid} still holds it {KILL_GRACE:g} s "
                        "after SIGKILL (stuck in the kernel?); giving up"
                    )
                # Another waiter got in after our override, and writes no record: a new
                # owner, with a full max wait of its own.
                ended, due = None, now + max_wait
                continue
            what = f"pid {info.pid}" + (f" ({info.command})" if info.command else "")
            warn(
                f"restart lock {path} is held by {what}, which made no progress for the max "
                f"wait of {max_wait:g} s (${ENV_MAX_WAIT}); overriding it by ending that "
                "process, and the processes it started, with SIGKILL"
            )
            _end(pidfd, info.pid, path)
        finally:
            os.close(pidfd)
        ended, overridden = (info.pid, info.start_time), info
        due = time.monotonic() + KILL_GRACE


def _self_held(path: Path) -> OperationFailed:
    return OperationFailed(
        f"restart lock {path} is already held by this process; the restart lock does not "
        "nest, and mosaic will neither wait for nor override itself"
    )


def _acquire(fd: int, path: Path, max_wait: float, warn: Warn) -> HolderInfo | None:
    """Take the flock on `fd`; on failure `fd` is closed (or left to the helper thread)."""
    try:
        st = os.fstat(fd)
        if st.st_nlink != 1:
            # A hard link would let the record overwrite some other file's content.
            raise ConfigError(
                f"lock file {path} has {st.st_nlink} hard links; refusing to write to it: "
                "remove it (mosaic recreates it)"
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            pass
        if procs.holds_exclusive_flock(os.getpid(), st):
            raise _self_held(path)
    except BaseException:
        os.close(fd)
        raise
    waiter = _Waiter(fd)
    try:
        return _wait_or_override(waiter, fd, st, path, max_wait, warn)
    except BaseException:
        if not waiter.abandon():
            os.close(fd)  # the helper finished first: the descriptor (and lock) is ours
        raise


@contextmanager
def restart_lock(
    path: Path, *, max_wait: float | None = None, warn: Warn | None = None
) -> Iterator[Held]:
    """Hold the restart lock for the duration of the block; call `progress()` on what it
    yields after each step.

    Waits without polling for the current holder to finish. A holder that makes no progress
    for `max_wait` seconds (default `max_wait_from_env()`) is ended with SIGKILL once it is
    verified to hold the lock, with a warning through `warn` (default: a line on stderr).
    Raises ConfigError for a bad max wait or a hostile lock path, OperationFailed when the
    lock cannot be had even by overriding (or this process holds it already: no nesting).
    """
    budget = max_wait_from_env() if max_wait is None else _check_max_wait(max_wait)
    t0 = time.monotonic()
    fd = open_lock_file(path)
    overridden = _acquire(fd, path, budget, warn or _warn_stderr)
    try:
        held = Held(fd, path, time.monotonic() - t0, overridden)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield held
    finally:
        held._release()
