"""The runtime registry: how to launch each agent CLI and how to read its screen.

A `Runtime` is pure data. Screen signatures are regexes searched line by line (re.MULTILINE)
in the live regions of the visible pane that the runtime's profile finds (screen/profiles/);
screen/classify.py applies them. A built-in's profile is a claim about one program's screens,
so it names the version it was verified on (`verified`, docs/runtimes.md). Custom runtimes
from the roster's `runtimes:` section produce the same type, so everything downstream treats
them alike.
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
    # Which screen reader to use (screen/profiles/): "codex", "claude", "gemini",
    # "opencode", "aider" or "generic" (the cursor line).
    profile: str = "generic"
    submit_key: str = "Enter"
    # Keys that ask the runtime to quit gracefully before signals are used.
    quit_keys: tuple[str, ...] = ()
    # Wait after a paste before the submit key, so the TUI does not fold Enter into the paste
    # (counted from when the pasted text shows in the input, when it does).
    paste_window_ms: int = 150
    # tmux key names (send-keys) that answer the runtime's approval dialog: allow once / deny.
    approve_keys: tuple[str, ...] = ()
    deny_keys: tuple[str, ...] = ()
    # How long a new activity must hold before the watcher reports it (a spinner frame not).
    debounce_ms: int = 500
    # The program and version whose real screens this profile was verified on ("" if none).
    verified: str = ""
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
            verified="Codex CLI 0.171.0",
            processes=("codex", *node),
            # Signatures are matched only in the live region its profile finds (the block
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
            verified="Claude Code 2.1.332",
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
            verified="Gemini CLI 0.61.0",
            # The npm entry is a node script (tmux shows `node`); it re-spawns itself as a
            # child node process unless GEMINI_CLI_NO_RELAUNCH=true.
            processes=("gemini", *node),
            ready=r"Type your message|\? for shortcuts",
            # Braille spinner in column 1, right above the input's rule.
            busy=r"^ ?[\u2800-\u28ff] .*\besc to cancel\b",
            # Only read in the bottom block a dialog draws when it replaces the input: the
            # tool approval (`Allow execution of [Shell]?`, `● 1. Allow once`), and any
            # rounded dialog with a selected radio button (first-run trust, theme, auth).
            approval=(
                r"Allow execution of|Waiting for user confirmation|Apply this change\?|"
                r"^│ *● \d+\. |Do you trust this folder|How would you like to authenticate"
            ),
            queued=r"^\s*Queued \(press ↑ to edit\)",
            profile="gemini",
            # Ctrl+C clears a non-empty input, then asks "Press Ctrl+C again to exit".
            quit_keys=("C-c", "C-c", "C-c"),
            # An Enter folded into a paste: seen at 200 ms once in 10; never at 300 ms.
            paste_window_ms=300,
            approve_keys=("1",),
            deny_keys=("Escape",),
            builtin=True,
        ),
        "opencode": Runtime(
            name="opencode",
            command=("opencode",),
            verified="opencode 1.18.33",
            # The npm bin is a hard link to the native binary; older packages ran it as
            # `.opencode` under a node wrapper.
            processes=("opencode", ".opencode", *node),
            ready=r"ctrl\+p commands",
            busy=r"\besc interrupt\b",
            approval=r"△ Permission required|Allow once\s+Allow always\s+Reject",
            # Three spaces after the bar: a message's own text starts two after it.
            queued=r"┃   QUEUED(?:\s|$)",
            profile="opencode",
            # Ctrl+C clears a non-empty box; on an empty one Ctrl+C exits.
            quit_keys=("C-c", "C-c"),
            approve_keys=("Enter",),
            deny_keys=("Escape",),
            builtin=True,
        ),
        "aider": Runtime(
            name="aider",
            command=("aider",),
            verified="aider 0.86.2",
            # tmux shows the venv's interpreter (`python3.11`); the process itself is named
            # after its script (comm `aider`, or argv[1] under an `env python3` shebang).
            processes=("aider",),
            ready=r"^[\w-]*>(?: |$)",
            busy=r"\bWaiting for \S",
            # Only an unanswered question: answered ones (`[Yes]: y`) stay in the scrollback.
            approval=r"\([YND]\)[^\n]*\[(?:Yes|No)\]:\s*$",
            profile="aider",
            # Two Ctrl+C within 2 s exit in any state; Ctrl+D only on an empty prompt.
            quit_keys=("C-c", "C-c"),
            approve_keys=("y", "Enter"),
            deny_keys=("n", "Enter"),
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
            verified="mosaic demo agent (bundled)",
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

