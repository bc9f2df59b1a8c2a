"""Read an agent's visible screen: what it is doing, and what sits in its input.

Pure functions over a captured pane (`tmux capture-pane -p`: no escapes, no colour). `status`
(activity), `send` (proof of acceptance), `approve` and the watcher all use this module, so
they never disagree.

The central difficulty is that a screen shows history as well as state: the conversation
above the input may quote any signature ("esc to interrupt", "Do you want to proceed?"), and
Codex even repeats the last submitted message in its footer. So signatures are never searched
over the whole pane. The runtime's profile (screen/profiles/, one module per program, see
docs/runtimes.md) first finds the *live regions* of the screen, and only those lines count.

Priority: awaiting_approval > busy > idle > unknown. Approval wins because an agent waiting
for the operator is stuck no matter what else is drawn; busy beats idle because several TUIs
draw their input even while they work.
"""

from __future__ import annotations

import re

from mosaic.config.runtimes import Runtime
from mosaic.screen import profiles
from mosaic.screen.model import (
    CONTEXT_ROWS,
    FRAGMENT_CHARS,
    Activity,
    Classification,
    InputCheck,
    Layout,
    Screen,
    compile_signature,
    matches,
    squash,
)
from mosaic.screen.profiles import generic

__all__ = [
    "CONTEXT_ROWS",
    "FRAGMENT_CHARS",
    "PASTE_PLACEHOLDER",
    "Activity",
    "Classification",
    "InputCheck",
    "Screen",
    "classify",
    "compile_signature",
    "input_text",
    "message_in_input",
    "queued",
    "squash",
]

PASTE_PLACEHOLDER = re.compile(r"\[Pasted (?:text|content|Content|~)[^\]]*\]")
"""What a TUI shows instead of a long paste: Claude Code `[Pasted text #1 +40 lines]`,
Codex `[Pasted Content 2048 chars]`, opencode `[Pasted ~3 lines]`."""


def classify(runtime: Runtime, screen: Screen) -> Classification:
    """Decide the activity; the evidence is the screen lines that decided it."""
    layout = profiles.layout(runtime, screen)
    hits = matches(runtime.approval, screen, layout.status_rows)
    if hits:
        return Classification(Activity.AWAITING_APPROVAL, hits)
    hits = matches(runtime.busy, screen, layout.status_rows) or _queued(runtime, screen, layout)
    if hits:
        return Classification(Activity.BUSY, hits)
    if layout.working_rows:
        return Classification(Activity.BUSY, _rows(screen, layout.working_rows))
    if layout.profiled:
        if layout.input_rows is None:
            return Classification(Activity.UNKNOWN, ())
        extra = matches(runtime.ready, screen, layout.ready_rows)
        lines = _rows(screen, layout.input_rows) + extra
        return Classification(Activity.IDLE, tuple(dict.fromkeys(lines)))
    hits = matches(runtime.ready, screen, layout.ready_rows)
    if hits:
        return Classification(Activity.IDLE, hits)
    return Classification(Activity.UNKNOWN, ())


def input_text(runtime: Runtime, screen: Screen) -> str | None:
    """The text in the runtime's input now ("" when empty), None when no input is visible.

    Continuation lines lose the TUI's indentation and are joined with line feeds; a
    placeholder (Codex's dim suggestion, Gemini's `Type your message`) reads as "".
    """
    return profiles.layout(runtime, screen).input_text


def queued(runtime: Runtime, screen: Screen) -> tuple[str, ...]:
    """The runtime's own sign that a message was queued behind a running turn (or ())."""
    return _queued(runtime, screen, profiles.layout(runtime, screen))


def _queued(runtime: Runtime, screen: Screen, layout: Layout) -> tuple[str, ...]:
    rows = layout.status_rows if layout.queued_rows is None else layout.queued_rows
    return matches(runtime.queued, screen, rows)


def _rows(screen: Screen, rows: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(screen.row(i).rstrip() for i in rows if screen.row(i).strip())


def message_in_input(runtime: Runtime, screen: Screen, message: str) -> InputCheck:
    """Whether `message` still sits in the runtime's input (so it was not submitted).

    Comparison is on `squash`ed text (no whitespace), because the TUI wraps, indents,
    truncates and re-renders tabs. A paste placeholder in the input counts as the message.
    Profiled runtimes: the input holds the message's head or tail, or the input is itself a
    fragment of the message (partly typed, or scrolled so only part shows). Generic runtimes:
    the message's tail is on the cursor line, see `generic.in_input`.
    """
    wanted = squash(message)
    layout = profiles.layout(runtime, screen)
    if layout.input_rows is None or layout.input_text is None:
        return InputCheck(False, (), region_found=False)
    rows = tuple(screen.row(i).rstrip() for i in layout.input_rows)
    if not wanted:
        return InputCheck(False, rows)
    if not layout.profiled:
        return generic.in_input(runtime, screen, message, wanted)
    text = layout.input_text
    if PASTE_PLACEHOLDER.search(text):
        return InputCheck(True, rows)
    have = squash(text)
    if not have:
        return InputCheck(False, rows)
    head, tail = wanted[:FRAGMENT_CHARS], wanted[-FRAGMENT_CHARS:]
    fragment = len(have) >= min(len(wanted), 8) and have in wanted
    return InputCheck(head in have or tail in have or fragment, rows)
