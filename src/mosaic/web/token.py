"""The dashboard's access token: `Paths.web_token` (0600), made by the first `web`.

Two `web` processes started at once on a fresh home must agree on one token (each prints
a URL that has to work), so the file appears complete or not at all: the token is written
to a private temp file that is then hard-linked to the final name, which fails when another
process got there first, and that one's token is read instead. A token is never rewritten
while it is valid, so a running dashboard's printed URL keeps working across restarts.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import secrets
from pathlib import Path

from mosaic.base.fs import FILE_MODE, ensure_dir
from mosaic.errors import ConfigError

_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def matches(given: str | None, token: str) -> bool:
    """Constant-time comparison: how long it takes says nothing about the token."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())


def load_or_create(path: Path) -> str:
    """The fleet's web token, created (0600) when missing or unreadable as a token."""
    for _ in range(5):
        found = _read(path)
        if found is not None:
            return found
        _create(path)
    raise ConfigError(f"{path}: cannot create the web token")


def _read(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the web token ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        text = f.read(256).decode("ascii", "replace").strip()
    if is_token(text):
        return text
    # Garbage (a hand edit, a truncated copy): replace it, atomically, with a fresh token.
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return None


def _create(path: Path) -> None:
    ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another `web` made it first: then its token counts
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
