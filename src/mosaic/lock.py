"""Kernel file locks (flock) on files that are never deleted.

`flock` is released by the kernel when the last descriptor of the open file description
closes, so an owner killed with SIGKILL never leaves a stale lock, and no staleness guessing
is needed. Lock files are opened O_CLOEXEC so a child spawned while the lock is held (a tmux
server, an agent) never inherits it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mosaic.fsutil import ensure_dir


def open_lock_file(path: Path) -> int:
    """Open (creating if needed) a regular lock file without following a symlink."""
    ensure_dir(path.parent)
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    fd = os.open(path, flags, 0o600)
    try:
        if not os.path.stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"lock file {path} is not a regular file")
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
        os.close(fd)
