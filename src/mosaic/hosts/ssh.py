"""The one door to other machines: OpenSSH, as the user runs it (docs/hosts.md).

Every call runs the `ssh` found on PATH, so the user's ~/.ssh/config, agent and
known_hosts apply; host keys are checked as that configuration says (nothing here turns
checking off). What this module adds, always, and only as options it spells itself:

* `BatchMode=yes`: a missing key or an unknown host key is an error, never a prompt;
* one multiplexed connection per host (`ControlMaster=auto`, `ControlPersist`), its socket
  in `<home>/fleet/run/ssh/` (0700), so a command costs one round trip, not a handshake;
* `ConnectTimeout` and `ServerAlive*`, plus a wall-clock timeout on every call, so a dead
  link is an error within a bound instead of a hang;
* `--` before the destination, so no roster value can ever be read as an option.

The ControlPath is the host's name relative to the control directory, and ssh runs with
that directory as its working directory: a unix socket path is limited to ~100 bytes, and a
deep mosaic home must not make multiplexing impossible. Host names cannot hold '/' or '%'
(`config.names.HOST_NAME_PATTERN`), so the path never needs ssh's %-escaping.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from mosaic.base.fs import DIR_MODE, ensure_dir
from mosaic.config.roster import Host
from mosaic.errors import ConfigError

CONNECT_TIMEOUT_S = 10
CONTROL_PERSIST_S = 600  # an idle master stays this long, so the next command reuses it
ALIVE_INTERVAL_S = 3
ALIVE_COUNT = 3  # a silent link is given up after about ALIVE_INTERVAL_S * ALIVE_COUNT
UNREACHABLE = 255  # ssh's own exit status for "could not connect or lost the connection"


def ssh_binary(env: Mapping[str, str] | None = None) -> str:
    path = shutil.which("ssh", path=None if env is None else env.get("PATH", os.defpath))
    if path is None:
        raise ConfigError(
            "ssh not found on PATH; hosts are reached with OpenSSH "
            "(Debian/Ubuntu: apt-get install openssh-client)"
        )
    return path


@dataclass(frozen=True)
class Reply:
    """What one remote command gave back. `code` is the remote command's exit status, or
    UNREACHABLE when ssh itself failed."""

    code: int
    out: bytes
    err: bytes
    seconds: float

    @property
    def err_text(self) -> str:
        return self.err.decode("utf-8", errors="replace").strip()


class Timeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


@dataclass(frozen=True)
class Link:
    """How to reach one host: its roster entry, where its control socket lives, and the
    environment ssh runs with (None: this process's; the watcher serving a caller's
    `status` passes the caller's, so the caller's agent socket and ssh configuration
    apply, `watch/serve.py`)."""

    host: Host
    control_dir: Path
    env: Mapping[str, str] | None = field(default=None, compare=False)

    def options(self) -> list[str]:
        opts = [
            "-o", "BatchMode=yes",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPersist={CONTROL_PERSIST_S}",
            "-o", f"ControlPath={self.host.name}",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
            "-o", f"ServerAliveInterval={ALIVE_INTERVAL_S}",
            "-o", f"ServerAliveCountMax={ALIVE_COUNT}",
            # Warnings ("Permanently added ...") would be mixed into the host's messages.
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        if self.host.port is not None:
            opts += ["-p", str(self.host.port)]
        if self.host.identity is not None:
            opts += ["-i", str(self.host.identity)]
        return opts

    def argv(self, remote_command: str, tty: bool = False) -> list[str]:
        """ssh's argv for one remote command line (already quoted for the host's shell)."""
        return [
            ssh_binary(self.env), *self.options(), "-t" if tty else "-T",
            "--", self.host.ssh, remote_command,
        ]  # fmt: skip

    def prepare(self) -> None:
        """The control directory exists and is private before ssh puts a socket in it."""
        ensure_dir(self.control_dir)
        if self.control_dir.stat().st_mode & 0o777 != DIR_MODE:
            os.chmod(self.control_dir, DIR_MODE)

    def run(self, remote_command: str, input: bytes | None, timeout: float) -> Reply:
        """Run one command on the host and wait for it, at most `timeout` seconds. A call
        started ahead with the same command line (`start_ahead`) is taken over instead."""
        argv = self.argv(remote_command)
        ahead = _take_ahead(self.control_dir, argv) if input is None else None
        if ahead is not None:
            proc, t0 = ahead
        else:
            self.prepare()
            t0 = time.monotonic()
            proc = _spawn(argv, self.control_dir, self.env, stdin=input is not None)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            self.retire()
            raise Timeout(timeout) from None
        return Reply(proc.returncode, out, err, time.monotonic() - t0)

    def start_ahead(self, remote_command: str) -> None:
        """Start a call now that a later `run` of the same command line will take over
        (`hosts.prefetch`); one nobody takes is ended when this process exits."""
        self.prepare()
        argv = self.argv(remote_command)
        proc = _spawn(argv, self.control_dir, self.env, stdin=False)
        with _AHEAD_LOCK:
            if not _AHEAD:
                atexit.register(_end_ahead)
            _AHEAD[(str(self.control_dir), tuple(argv))] = (proc, time.monotonic())

    def retire(self) -> None:
        """A master that left a call unanswered is suspect (a silent partition): it stops
        taking new sessions (`-O stop`), so the next call connects afresh, while sessions
        already on it (another command's `logs -f`) run on undisturbed."""
        self._control("stop")

    def popen(self, remote_command: str) -> subprocess.Popen[bytes]:
        """A streaming command (`logs -f`, `events --follow`): stdout is the caller's to
        read; a dead link ends it through ServerAlive*."""
        self.prepare()
        return subprocess.Popen(
            self.argv(remote_command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.control_dir,
            env=self.env,
        )

    def exec_tty(self, remote_command: str) -> NoReturn:
        """Replace this process with an interactive ssh session (`watch`, `attach`)."""
        self.prepare()
        argv = self.argv(remote_command, tty=True)
        os.chdir(self.control_dir)
        os.execv(argv[0], argv)

    def master_pid(self) -> int | None:
        """The pid of this host's running control master, if one runs (`ssh -O check`)."""
        if not (self.control_dir / self.host.name).exists():
            return None
        proc = subprocess.run(
            [ssh_binary(self.env), *self.options(), "-O", "check", "--", self.host.ssh],
            capture_output=True, timeout=CONNECT_TIMEOUT_S, cwd=self.control_dir, env=self.env,
        )  # fmt: skip
        text = proc.stderr.decode("utf-8", errors="replace")
        marker = "(pid="
        if proc.returncode != 0 or marker not in text:
            return None
        digits = text.split(marker, 1)[1].split(")", 1)[0]
        return int(digits) if digits.isdigit() else None

    def _control(self, command: str) -> None:
        if not (self.control_dir / self.host.name).exists():
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [ssh_binary(self.env), *self.options(), "-O", command, "--", self.host.ssh],
                capture_output=True, timeout=CONNECT_TIMEOUT_S, cwd=self.control_dir,
                env=self.env,
            )  # fmt: skip


def _spawn(
    argv: list[str], cwd: Path, env: Mapping[str, str] | None, stdin: bool
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )


# Calls started ahead (`Link.start_ahead`), by control directory and argv, with their start.
_AHEAD: dict[tuple[str, tuple[str, ...]], tuple[subprocess.Popen[bytes], float]] = {}
_AHEAD_LOCK = threading.Lock()


def _take_ahead(control_dir: Path, argv: list[str]) -> tuple[subprocess.Popen[bytes], float] | None:
    with _AHEAD_LOCK:
        return _AHEAD.pop((str(control_dir), tuple(argv)), None)


def _end_ahead() -> None:
    """At exit: end calls started ahead that nothing took over (the command failed first)."""
    with _AHEAD_LOCK:
        left = [proc for proc, _ in _AHEAD.values()]
        _AHEAD.clear()
    for proc in left:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
