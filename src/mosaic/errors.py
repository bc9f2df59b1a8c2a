"""One exception tree for everything a user can be told, and one exit-code map.

The CLI catches `MosaicError` at the top and prints `message` without a traceback; any
other exception is a bug and is allowed to show one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit status mosaic gives (docs/reference.md, "Exit codes")."""

    OK = 0
    FAILED = 1  # the operation ran and failed (a stop, an agent not running)
    USAGE = 2  # usage or configuration error: nothing was done
    NOT_ACCEPTED = 3  # typed, but no proof the agent took it (or a wait timed out)
    CONFIG_UNIT = 78  # sysexits EX_CONFIG: an agent unit that restarting cannot mend
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class MosaicError(Exception):
    """Base of every error meant for the user."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(MosaicError):
    """The user asked for something that cannot be (unknown agent, bad flag value)."""

    exit_code = ExitCode.USAGE


class ConfigError(MosaicError):
    """Configuration is wrong (roster, environment, paths)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Problem:
    """One roster problem at a position; line and column are 1-based."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class RosterError(ConfigError):
    """A roster with one or more problems; all of them are reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.col, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownAgentError(UsageError):
    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "(the roster has no agents)"
        super().__init__(f"unknown agent {name!r}; known agents: {listed}")
        self.name = name
        self.known = known


class OperationFailed(MosaicError):
    """An operation ran and failed (a start, a stop, a unit)."""

    exit_code = ExitCode.FAILED


class TmuxError(OperationFailed):
    """A tmux call failed; the message names the tmux subcommand."""


class TmuxMissingError(ConfigError):
    def __init__(self) -> None:
        super().__init__(
            "tmux not found on PATH; mosaic fleet needs tmux >= 3.2 "
            "(Debian/Ubuntu: apt-get install tmux; macOS: brew install tmux)"
        )
