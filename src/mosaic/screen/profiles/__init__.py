"""One module per runtime profile: where each program draws its input, its state and its
dialogs (docs/runtimes.md). A profile only locates regions (`Layout`); the signatures that
decide busy / awaiting approval / queued are the runtime's (config/runtimes.py), applied by
screen/classify.py to the regions alone.
"""

from __future__ import annotations

from collections.abc import Callable

from mosaic.config.runtimes import Runtime
from mosaic.screen.model import Layout, Screen
from mosaic.screen.profiles import aider, claude, codex, gemini, generic, opencode

LAYOUTS: dict[str, Callable[[Runtime, Screen], Layout]] = {
    "generic": generic.layout,
    "codex": codex.layout,
    "claude": claude.layout,
    "gemini": gemini.layout,
    "opencode": opencode.layout,
    "aider": aider.layout,
}


def layout(runtime: Runtime, screen: Screen) -> Layout:
    """The runtime's profile reads the screen; an unknown profile name reads as generic."""
    return LAYOUTS.get(runtime.profile, generic.layout)(runtime, screen)
