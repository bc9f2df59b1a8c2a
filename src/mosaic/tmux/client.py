"""The one door to tmux: every call goes through `Tmux.run`.

Each call has a timeout, checks the exit status, and raises `TmuxError` tagged with the
tmux subcommand and tmux's own stderr. The fleet's private server is always addressed with
`-L <socket>`; user text only ever travels as a separate argv element (through `literal`,
and `format_literal` where tmux expands formats) or on stdin, never through a shell, and
what tmux hands back is read only through fields it cannot forge (`field_format`).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mosaic.config import programs
from mosaic.errors import TmuxError, TmuxMissingError

# Field separator for -F formats: a control character tmux escapes in session names and
# `field_format` removes from free text, so no value can contain it.
SEP = "\x1f"
MIN_VERSION = (3, 2)

# Fields whose value is free text that tmux passes through as it is: a process's argv[0]
# can hold a newline and SEP, which would forge a row (another agent's pid, for `stop` to
# kill). tmux replaces those characters before the value reaches us. Session names need
# no such care: tmux escapes control characters in them when a session is named.
FREE_TEXT_FIELDS = frozenset({"pane_current_command", "pane_title", "window_name"})


def field_format(name: str) -> str:
    """The `-F` format that reads field `name` as one line-free, SEP-free value."""
    if name in FREE_TEXT_FIELDS:
        return "#{s/[\n\x1e\x1f]/?/:" + name + "}"
    return "#{" + name + "}"


def literal(text: str) -> str:
    """`text` as ONE argument of a tmux command: tmux ends a command at any argument that
    ends in `;` (so a roster's `args: ["x;", "run-shell", "..."]` would run a second
    command), and takes `\\;` at the end as a plain `;`."""
    return text[:-1] + "\\;" if text.endswith(";") else text


def format_literal(text: str) -> str:
    """`text` where tmux expands formats (`new-session -c`, `run-shell`): as it is, so
    `#(cmd)` in a directory name runs nothing. (pipe-pane also expands strftime `%`:
    `transcript.tmux_literal`.)"""
    return text.replace("#", "##")

_EMPTY = re.compile(r"no current target|no sessions")
_NO_SERVER = re.compile(r"no server running|error connecting to|failed to connect|No such file")


def tmux_binary() -> str:
    path = programs.find("tmux", programs.search_path(None, os.environ))
    if path is None:
        raise TmuxMissingError()
    return path


@dataclass(frozen=True)
class Tmux:
    socket: str
    # Read by tmux only when a call starts the server.
    config: Path | None = None
    env: Mapping[str, str] | None = None
    timeout: float = 10.0

    def argv(self, *args: str) -> list[str]:
        base = [tmux_binary(), "-L", self.socket]
        if self.config is not None:
            base += ["-f", str(self.config)]
        return [*base, *args]

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one tmux command line; `args[0]` is the subcommand used to tag errors."""
        argv = self.argv(*args)
        env = dict(os.environ if self.env is None else self.env)
        # A caller inside tmux must not make us talk to (or nest in) their server.
        env.pop("TMUX", None)
        try:
            proc = subprocess.run(
                argv,
                input=input,
                capture_output=True,
                timeout=timeout or self.timeout,
                env=env,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise TmuxError(f"tmux {args[0]}: timed out after {exc.timeout:g}s") from None
        if check and proc.returncode != 0:
            raise _failure(args[0], proc)
        return proc

    def out(self, *args: str, input: bytes | None = None, timeout: float | None = None) -> str:
        return _text(self.run(*args, input=input, timeout=timeout).stdout, strip=False)

    def server_running(self) -> bool:
        proc = self.run("list-sessions", "-F", "#{session_name}", check=False)
        return proc.returncode == 0

    def query(self, fmt_fields: Sequence[str], *args: str) -> list[list[str]] | None:
        """`list-panes`-style query returning rows of fields; None when no server runs."""
        fmt = SEP.join(field_format(f) for f in fmt_fields)
        proc = self.run(*args, "-F", fmt, check=False)
        if proc.returncode != 0:
            err = _text(proc.stderr)
            if _NO_SERVER.search(err):
                return None
            if _EMPTY.search(err):
                return []  # a server with no sessions (exit-empty is off)
            raise _failure(args[0], proc)
        rows = []
        # "\n" only: str.splitlines would also split at \x1c-\x1e, \x85, \u2028 ...
        for line in _text(proc.stdout, strip=False).split("\n"):
            parts = line.split(SEP)
            if len(parts) == len(fmt_fields):
                rows.append(parts)
        return rows

    def version(self) -> tuple[int, int]:
        proc = subprocess.run(
            [tmux_binary(), "-V"], capture_output=True, timeout=self.timeout, check=False
        )
        return parse_version(_text(proc.stdout))


def parse_version(text: str) -> tuple[int, int]:
    """`tmux 3.3a` -> (3, 3); `tmux next-3.5` -> (3, 5); unknown -> (0, 0)."""
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _failure(subcommand: str, proc: subprocess.CompletedProcess[bytes]) -> TmuxError:
    return TmuxError(f"tmux {subcommand}: {_text(proc.stderr) or f'exit {proc.returncode}'}")


def _text(data: bytes, strip: bool = True) -> str:
    text = data.decode("utf-8", errors="replace")
    return text.strip() if strip else text
