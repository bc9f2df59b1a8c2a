"""A long-lived tmux control-mode client (`tmux -C`): tmux commands without a process each.

A resident reader that asks tmux "what changed?" several times a second cannot afford a
tmux client process per question (a few milliseconds of CPU each); one control client
answers the same question in a tenth of a millisecond. A control client must be attached
to a session, so it attaches to (or creates) the watcher's own session
(`config.names.WATCHER_SESSION`), with pane output switched off (`no-output`): it sees
only the answers to its commands.

Only fixed command text written in this module's callers is sent (formats, no names), so
nothing from outside can reach tmux's command parser here. Replies are framed by tmux as
`%begin T N F` … `%end T N F` (or `%error`); notifications, which tmux never puts inside a
block, are skipped.

The server is never started from here: the client only ever runs `attach-session`, which
cannot start one (`new-session` would, and a server forked by a watcher that is being
stopped together with the fleet would outlive it and take the socket from the next start).
Where the session may be missing (a watcher not running inside it), an `anchor` command
creates it, only while the server answers.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Sequence

from mosaic.tmux.client import Tmux

READ_TIMEOUT_S = 5.0


class ControlError(Exception):
    """The control client is gone or did not answer; make a new one."""


class ControlClient:
    def __init__(self, tmux: Tmux, session: str, anchor: Sequence[str] | None) -> None:
        """`anchor`: the command of `session` if it has to be created (it only holds the
        session open for the client); None: never create it."""
        self.tmux = tmux
        self.session = session
        self.anchor = list(anchor) if anchor is not None else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""

    def open(self) -> None:
        if not self.tmux.server_running():
            raise ControlError("the tmux server is not running")
        target = "=" + self.session
        if self.anchor is not None:
            known = self.tmux.run("has-session", "-t", target, check=False)
            if known.returncode != 0 and self.tmux.server_running():
                self.tmux.run("new-session", "-d", "-s", self.session, "--", *self.anchor,
                              check=False)  # fmt: skip
        argv = self.tmux.argv("-C", "attach-session", "-t", target)
        env = dict(os.environ if self.tmux.env is None else self.tmux.env)
        env.pop("TMUX", None)
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, close_fds=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._block()  # the reply to attach-session itself
        self.command("refresh-client -f no-output")

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def connected(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self, line: str) -> list[str]:
        """Run one tmux command line; its output lines. A tmux error raises ControlError."""
        if self.proc is None or self.proc.stdin is None:
            raise ControlError("not connected")
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise ControlError(f"tmux control client: {exc}") from None
        return self._block()

    def _block(self) -> list[str]:
        deadline = time.monotonic() + READ_TIMEOUT_S
        while True:
            line = self._line(deadline)
            if not line.startswith("%begin "):
                continue  # a notification
            head = line.split(" ")[1:]
            body: list[str] = []
            while True:
                line = self._line(deadline)
                word, _, rest = line.partition(" ")
                if word in ("%end", "%error") and rest.split(" ") == head:
                    if word == "%error":
                        raise ControlError("tmux: " + " ".join(body))
                    return body
                body.append(line)

    def _line(self, deadline: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise ControlError("tmux control client did not answer")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self.close()
                raise ControlError("tmux control client exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", errors="replace").rstrip("\r")
