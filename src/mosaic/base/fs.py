"""Private directories (0700), private files (0600) and atomic file replacement.

Every file mosaic rewrites goes through `atomic_write`, so a crash at any instant leaves
either the old or the new content, never a torn file.
"""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
TEMP_SUFFIX = ".tmp"


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents) as 0700; an existing directory keeps its mode."""
    if not path.is_dir():
        # mkdir(parents=True) would give the parents the umask's mode, not 0700.
        if not path.parent.is_dir():
            ensure_dir(path.parent)
        path.mkdir(mode=DIR_MODE, exist_ok=True)
    return path


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write `data` to a temp file beside `path`, fsync it, rename over `path`, fsync the dir."""
    import tempfile  # with shutil, random, lzma...: not for readers such as `status`

    directory = path.parent
    ensure_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=directory)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete the temp files that writers killed mid-`atomic_write` left beside `path`.

    Only sound while holding the lock that every writer of `path` holds: then no temp
    file of `path` can belong to a live writer."""
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def stamp(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of a file, None when it cannot be read: changes when the file is
    written or replaced (a roster edited, a transcript grown or rotated)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
