"""What counts as a message at all: one rule for every front end (the CLI, its click-free
`send --queue`, the web API). Imports nothing, so the fast path can use it."""

from __future__ import annotations


def problem(text: str) -> str | None:
    """Why `text` is not a message (nothing but whitespace), or None."""
    return "the message is empty" if not text.strip() else None
