"""`mosaic.base.flock`: the plain exclusive flock other commands (roster edits, sends) build on."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import lock_is_free, wait_until
from mosaic.base.flock import exclusive, open_lock_file
from mosaic.errors import ConfigError

HOLD = (
    "import sys\nfrom pathlib import Path\nfrom mosaic.base.flock import exclusive\n"
    "with exclusive(Path(sys.argv[1])):\n"
    "    print('in', flush=True)\n"
    "    sys.stdin.readline()\n"
)


def hold(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "in"
    return proc


def test_exclusive_excludes_other_processes_and_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "x.lock"
    proc = hold(path)
    try:
        assert not lock_is_free(path)
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
        assert lock_is_free(path)
        assert path.is_file()  # never deleted
        assert (path.stat().st_mode & 0o777) == 0o600
        assert (path.parent.stat().st_mode & 0o777) == 0o700
    finally:
        proc.kill()
        proc.wait()


def test_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    proc = hold(path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_until(lambda: lock_is_free(path), timeout=5, what="lock freed by the kernel")
    with exclusive(path):
        assert not lock_is_free(path)


def test_descriptor_is_close_on_exec(tmp_path: Path) -> None:
    with exclusive(tmp_path / "x.lock") as fd:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert os.get_blocking(fd)


def test_hostile_paths_are_clear_errors(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("x")
    link = tmp_path / "link.lock"
    link.symlink_to(target)
    fifo = tmp_path / "fifo.lock"
    os.mkfifo(fifo)
    directory = tmp_path / "dir.lock"
    directory.mkdir()
    for path, what in ((link, "symbolic link"), (fifo, "FIFO"), (directory, "directory")):
        with pytest.raises(ConfigError, match=what), exclusive(path):
            pass
    assert target.read_text() == "x"


def test_observer_open_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run" / "x.lock"
    with pytest.raises(FileNotFoundError):
        open_lock_file(path, create=False)
    assert not path.parent.exists()
