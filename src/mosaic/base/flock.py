"""Kernel file locks (flock) on files that are never deleted.

`flock` is released by the kernel when the last descriptor of the open file description
closes, so an owner killed with SIGKILL never leaves a stale lock, and no staleness guessing
is needed. Lock files are opened O_CLOEXEC so a child spawned while the lock is held (a tmux
server, an agent) never inherits it.

POSIX record locks (`lockf`, F_SETLK) are deliberately not used: they are owned by the
process and vanish when *any* descriptor of the file is closed, so an unrelated
`open()`/`close()` of the lock file elsewhere in the process would silently drop them.

A lock path that is not a plain regular file is refused with a clear `ConfigError` rather
than "repaired": replacing it would mean unlinking or renaming at the lock path, which is
exactly what splits the inode between two processes and breaks mutual exclusion.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mosaic.base.fs import ensure_dir
from mosaic.errors import ConfigError

_HINT = "remove it (mosaic recreates it as a regular file)"


def _refuse(path: Path, what: str) -> ConfigError:
    return ConfigError(f"lock file {path} is {what}; refusing to use it: {_HINT}")


def open_lock_file(path: Path, *, create: bool = True) -> int:
    """Open (creating if needed) a regular lock file without following a symlink.

    O_NOFOLLOW keeps a planted symlink from redirecting the lock (and the diagnostics
    written into it) onto another file; O_NONBLOCK keeps a FIFO at the path from hanging
    the open; the type check afterwards rejects anything but a regular file. The returned
    descriptor is blocking and close-on-exec; it is read-write, or read-only with
    `create=False` (for observers that must neither create the file nor its directory,
    and see FileNotFoundError when there is none).
    """
    if create:
        try:
            ensure_dir(path.parent)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"cannot create directory for lock file {path}: {reason}") from exc
        flags = os.O_RDWR | os.O_CREAT
    else:
        flags = os.O_RDONLY
    flags |= os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ENOENT and not create:
            raise
        if exc.errno == errno.ELOOP:
            raise _refuse(path, "a symbolic link") from exc
        if exc.errno == errno.EISDIR:
            raise _refuse(path, "a directory") from exc
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot open lock file {path}: {reason}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            if stat.S_ISDIR(mode):
                raise _refuse(path, "a directory")
            raise _refuse(path, "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def exclusive(path: Path) -> Iterator[int]:
    """Hold an exclusive flock on `path` for the duration of the block (blocking wait)."""
    fd = open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        # Closing our only descriptor releases the flock; the file itself stays.
        os.close(fd)


@contextmanager
def attempt(path: Path) -> Iterator[bool]:
    """Hold an exclusive flock on `path` for the block if it is free now (True), else run
    the block without it (False); never waits. For work that can come back later."""
    fd = open_lock_file(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            fd = -1
            yield False
        else:
            yield True
    finally:
        if fd >= 0:
            os.close(fd)


def held(path: Path) -> bool:
    """Whether any process holds an exclusive flock on `path` right now; never waits and
    never creates the file (none means not held). Probes with a shared lock, dropped at
    once, through a fresh descriptor; a hostile path raises ConfigError as `open_lock_file`
    does."""
    try:
        fd = open_lock_file(path, create=False)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
