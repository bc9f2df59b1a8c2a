"""The runtime registry: how to launch each agent CLI and how to read its screen.

A `Runtime` is pure data. Screen signatures are regexes searched line by line (re.MULTILINE)
over the visible pane; `screen.py` interprets them. Custom runtimes from the roster's
`runtimes:` section produce the same type, so everything downstream treats them alike.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from mosaic.config import programs


@dataclass(frozen=True)
class Runtime:
    name: str
    command: tuple[str, ...]
    # Pane commands (tmux `pane_current_command`) that mean "the runtime itself is running".
    processes: tuple[str, ...]
    ready: str | None = None
    busy: str | None = None
    approval: str | None = None
    # The runtime's own sign that a message sent while busy was queued (Claude Code).
    queued: str | None = None
    # Which input-region parser to use: "codex", "claude" or "generic" (the cursor line).
    profile: str = "generic"
    submit_key: str = "Enter"
    # Keys that ask the runtime to quit gracefully before signals are used.
    quit_keys: tuple[str, ...] = ()
    # Wait after a paste before the submit key, so the TUI does not fold Enter into the paste.
    paste_window_ms: int = 150
    # Keys (tmux key names) that answer the runtime's approval dialog: approve ONCE (never
    # "always"), or refuse. Used only when the screen is classified awaiting_approval.
    approve_keys: tuple[str, ...] = ()
    deny_keys: tuple[str, ...] = ()
    # How long a new activity must hold before the watcher reports it, so that one spinner
    # frame is not a turn.
    debounce_ms: int = 500
    builtin: bool = False
    # The command is chosen from the environment at load time ($SHELL and whether it is
    # installed), so nothing derived from it may be cached against the roster text alone.
    env_dependent: bool = False

    @property
    def program(self) -> str:
        return self.command[0]


# For a session whose runtime is unknown (an agent since removed from the roster, a stray
# session on the socket): no quit keys, so stopping it goes straight to signals.
UNKNOWN = Runtime(name="(unknown)", command=("true",), processes=())


def _python_names() -> tuple[str, ...]:
    base = os.path.basename(sys.executable)
    names = {"python", "python3", f"python3.{sys.version_info.minor}", base}
    return tuple(sorted(names))


def _shell_command() -> tuple[str, ...]:
    shell = os.environ.get("SHELL") or ""
    if shell and programs.find(shell, os.environ.get("PATH", os.defpath)):
        return (shell,)
    return ("bash",)


_SHELLS = ("bash", "zsh", "sh", "dash", "fish", "ksh", "mksh", "tcsh", "csh")


def builtin_runtimes() -> dict[str, Runtime]:
    """Built-ins are computed on demand because `shell` and `demo` depend on the environment."""
    node = ("node",)
    return {
        "codex": Runtime(
            name="codex",
            command=("codex",),
            processes=("codex", *node),
            # Signatures are matched only in the live region screen.py finds (the block
            # above the `›` input and the footer), never in the conversation or the input.
            ready=r"^[›»] |\? for shortcuts|\d+% context left",
            # Column 0 bullet: the footer (which repeats the last message) is indented.
            busy=r"^[•◦] .*esc to interrupt\)|^[•◦] Working \(",
            approval=(
                r"Would you like to (?:run|make|apply) |Allow command\?|"
                r"^\s*[Pp]ress [Ee]nter to (?:confirm|continue)|"
                r"Sign in with ChatGPT|Provide your own API key"
            ),
            profile="codex",
            quit_keys=("C-c", "C-c"),
            # `› 1. Yes, proceed (y)`; `p` would be "don't ask again". Esc cancels.
            approve_keys=("y",),
            deny_keys=("Escape",),
            builtin=True,
        ),
        "claude": Runtime(
            name="claude",
            command=("claude",),
            processes=("claude", *node),
            # The input prompt is `❯` + no-break space; prompts in the scrollback use a space.
            ready=r"^❯\u00a0",
            # Spinner glyph in column 0 + verb + `…` (the done line `✻ Sautéed for 6s` has
            # no ellipsis); `esc to interrupt` is in the footer while a turn runs.
            busy=r"^[✻✽✶✳✢·*] \S.*…|esc to interrupt",
            approval=(
                r"Do you want to (?:proceed|make this edit|create)|^\s*❯ 1\. Yes|"
                r"Do you trust the files|Choose the text style|Select login method|"
                r"Press Enter to continue"
            ),
            queued=r"⎿\s+Queued\b|Press up to edit queued messages",
            profile="claude",
            quit_keys=("C-c", "C-c"),
            # `❯ 1. Yes` is the allow-once choice (2 and 3 allow more); Esc cancels.
            approve_keys=("1",),
            deny_keys=("Escape",),
            builtin=True,
        ),
        "gemini": Runtime(
            name="gemini",
            command=("gemini",),
            processes=("gemini", *node),
            ready=r"Type your message",
            busy=r"esc to cancel",
            approval=r"Waiting for user confirmation|Allow execution",
            # Input is the `│ > …│` line of the bordered box (unverified on a real screen;
            # falls back to the generic cursor rule when no such box is drawn).
            profile="gemini",
            quit_keys=("C-c", "C-c"),
            builtin=True,
        ),
        "opencode": Runtime(
            name="opencode",
            command=("opencode",),
            processes=("opencode", ".opencode", *node),
            ready=r"Ask anything",
            busy=r"esc interrupt",
            quit_keys=("C-c",),
            builtin=True,
        ),
        "aider": Runtime(
            name="aider",
            command=("aider",),
            processes=("aider", *_python_names()),
            ready=r"^[\w-]*> ",
            # Only an unanswered question: answered ones (`[Yes]: y`) stay in the scrollback.
            approval=r"\(Y\)es/\(N\)o.*:\s*$",
            quit_keys=("C-d",),
            builtin=True,
        ),
        "shell": Runtime(
            name="shell",
            command=_shell_command(),
            processes=_SHELLS,
            ready=r"[$#%>] ?$",
            quit_keys=("C-c", "C-d"),
            builtin=True,
            env_dependent=True,
        ),
        "demo": Runtime(
            name="demo",
            command=(sys.executable, "-m", "mosaic.demo_agent"),
            processes=_python_names(),
            # Kept in sync with what demo_agent.py draws (PROMPT, CONTINUATION, busy line,
            # approval question); all anchored at column 0, where message text never is.
            # capture-pane trims trailing spaces: an empty prompt reads `demo>`.
            ready=r"^(?:demo|\.\.\.\.)>(?: |$)",
            busy=r"^[|/\\-] thinking",
            approval=r"^Allow\? \(y/n\)",
            quit_keys=("C-c", "C-d"),
            approve_keys=("y",),
            deny_keys=("n",),
            builtin=True,
        ),
    }

