"""Running `mosaic fleet ...` on a host, and reading what it says (docs/hosts.md).

Every remote call is one line for the host's login shell, built here and only here:

    mosaic fleet [--mosaic-home HOME] --controller-version V COMMAND ARGS...

each word quoted with `shlex.quote`, so nothing reaches the shell unquoted; the words are
agent names (validated), flags and numbers this module's callers spell. Text that comes
from a user (a message, the roster) travels on ssh's stdin, never on the command line.
The host's own environment decides its tmux socket and supervisor: the controller passes
none of its own.

Failures become `HostError`s whose message starts with the host's name: unreachable (ssh
exit 255 or no answer in time), mosaic missing there (the shell's 127), a release that
cannot serve this controller, or the host's own error message with its exit code
(docs/reference.md, "Exit codes").
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from mosaic import __version__
from mosaic.errors import ExitCode, MosaicError
from mosaic.hosts import version
from mosaic.hosts.ssh import UNREACHABLE, Link, Reply, Timeout

# Seconds a call may take before the host counts as not answering.
QUICK_S = 15.0  # status, capture, logs, the roster: a silent host costs status this much
LIFECYCLE_S = 900.0  # start, stop, restart of a whole host's fleet
PASSED_CODES = {int(c) for c in ExitCode}
STATUS = ("status", "--json")  # what `status` asks each host (and `hosts.prefetch` ahead)


def outbox_listing(everything: bool) -> tuple[str, ...]:
    """What `outbox [--all]` asks each host (and `hosts.prefetch` ahead)."""
    return ("outbox", *(("--all",) if everything else ()), "--json")


class HostError(MosaicError):
    """One host could not do what was asked; the message names the host."""

    def __init__(
        self, host: str, message: str, exit_code: int = ExitCode.FAILED, reachable: bool = True
    ) -> None:
        super().__init__(message)
        self.host = host
        self.exit_code = ExitCode(exit_code) if exit_code in PASSED_CODES else ExitCode.FAILED
        self.reachable = reachable

    @property
    def reason(self) -> str:
        """The message without the leading host name, for places that show the host."""
        prefix = f"host {self.host}"
        text = self.message
        return text[len(prefix) :].lstrip(" :") if text.startswith(prefix) else text


@dataclass(frozen=True)
class Remote:
    link: Link

    @property
    def name(self) -> str:
        return self.link.host.name

    def command(self, args: Sequence[str]) -> str:
        home = ["--mosaic-home", self.link.host.home] if self.link.host.home else []
        words = ["mosaic", "fleet", *home, "--controller-version", __version__, *args]
        return shlex.join(words)

    def call(
        self,
        args: Sequence[str],
        input: bytes | None = None,
        timeout: float = QUICK_S,
        ok: Sequence[int] = (0,),
    ) -> Reply:
        """Run one mosaic command there; an exit status outside `ok` is a HostError."""
        try:
            reply = self.link.run(self.command(args), input, timeout)
        except Timeout as exc:
            raise HostError(
                self.name, f"host {self.name} unreachable: {exc}", reachable=False
            ) from None
        if reply.code in ok:
            return reply
        raise self.failure(reply.code, reply.err_text)

    def json(
        self,
        args: Sequence[str],
        input: bytes | None = None,
        timeout: float = QUICK_S,
        ok: Sequence[int] = (0,),
    ) -> tuple[Any, Reply]:
        """A `--json` command's document (and the reply it came in)."""
        reply = self.call(args, input, timeout, ok)
        return parse_json(self.name, reply.out), reply

    def lines(self, args: Sequence[str], timeout: float = LIFECYCLE_S) -> list[str]:
        """The report lines of a command that prints one line per agent."""
        reply = self.call(args, timeout=timeout)
        return reply.out.decode("utf-8", errors="replace").splitlines()

    def push_roster(self, text: bytes) -> None:
        """Replace the host's roster with its part of ours (validated there, atomic)."""
        self.call(["roster-put"], input=text)

    def follow(self, args: Sequence[str]) -> Iterator[bytes]:
        """Output of a command that runs until interrupted, as it arrives."""
        proc = self.link.popen(self.command(args))
        assert proc.stdout is not None and proc.stderr is not None
        try:
            while chunk := os.read(proc.stdout.fileno(), 65536):
                yield chunk
            err = proc.stderr.read().decode("utf-8", errors="replace").strip()
            code = proc.wait()
        finally:
            end(proc)
        if code != 0:
            raise self.failure(code, err)

    def exec_tty(self, args: Sequence[str]) -> NoReturn:
        self.link.exec_tty(self.command(args))

    def failure(self, code: int, err: str) -> HostError:
        name, target = self.name, self.link.host.ssh
        if code == UNREACHABLE:
            return HostError(
                name, f"host {name} unreachable: {_last_line(err) or 'ssh failed'}",
                reachable=False,
            )  # fmt: skip
        if code in (126, 127):
            return HostError(
                name,
                f"host {name}: mosaic is not installed there (a non-interactive SSH session "
                f"finds no runnable `mosaic` on its PATH: {_last_line(err)}); install it with "
                f"{version.install_hint()} and check with `ssh {target} mosaic --version`",
            )
        if version.INCOMPATIBLE in err:
            return HostError(name, f"host {name}: {_last_line(err)}", ExitCode.USAGE)
        if "--controller-version" in err:
            return HostError(
                name,
                f"host {name}: the mosaic there is older than this controller "
                f"({__version__}) and cannot serve it; install the controller's release there "
                f"({version.install_hint()})",
                ExitCode.USAGE,
            )
        message = "\n".join(f"host {name}: {line}" for line in err.splitlines() if line)
        return HostError(name, message or f"host {name}: mosaic exited {code}", code)


def parse_json(host: str, out: bytes) -> Any:
    """The JSON document a command printed. A login script that prints on a
    non-interactive session would come first, so the last line is tried too."""
    text = out.decode("utf-8", errors="replace").strip()
    for candidate in (text, text.rsplit("\n", 1)[-1]):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    first = text.split("\n", 1)[0][:200]
    raise HostError(host, f"host {host}: expected a JSON answer, got {first!r}")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a streaming ssh client (and with it the command's session there)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
