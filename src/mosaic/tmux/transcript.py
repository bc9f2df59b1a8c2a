"""Agent transcripts (<home>/fleet/logs/<agent>.log, rotated to .log.1): written by a
pipe from the pane, read by `logs`.

The pane's raw output is stored as is; terminal control sequences are removed only when a
person reads it, so nothing is lost from the record.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mosaic.base.fs import ensure_dir
from mosaic.config.paths import Paths
from mosaic.errors import ConfigError
from mosaic.tmux.client import Tmux

# <agent>.log grows to this size, then becomes <agent>.log.1, so an agent's transcripts
# never take more than twice this ($MOSAIC_FLEET_LOG_MAX_BYTES).
LOG_MAX_BYTES = 4 * 1024 * 1024
MIN_LOG_MAX_BYTES = 4096


def log_max_bytes() -> int:
    raw = os.environ.get("MOSAIC_FLEET_LOG_MAX_BYTES", "")
    if not raw:
        return LOG_MAX_BYTES
    if not raw.isdigit() or int(raw) < MIN_LOG_MAX_BYTES:
        raise ConfigError(
            "MOSAIC_FLEET_LOG_MAX_BYTES must be a whole number of bytes "
            f">= {MIN_LOG_MAX_BYTES}, not {raw!r}"
        )
    return int(raw)


# The pipe: a POSIX sh loop around `dd` (a few hundred KiB of RSS) rather than a Python
# process, keeping per-agent overhead small. dd, unlike head, writes each read at once (no
# stdio buffering), so `logs -f` is live. It may stop before `count` (a short pipe read
# counts as a block), so only a run that added nothing means the pane closed the pipe.
_PIPE = (
    'f="$1"; max="$2"; '
    "while :; do "
    's=$(wc -c < "$f" 2>/dev/null) || s=0; '
    'if [ "$s" -ge "$max" ]; then mv -f "$f" "$f.1" || exit 1; s=0; fi; '
    'dd iflag=count_bytes count="$((max - s))" bs=4096 status=none '
    'oflag=append conv=notrunc of="$f" || exit 1; '
    'n=$(wc -c < "$f") || exit 1; '
    '[ "$n" -gt "$s" ] || exit 0; '
    "done"
)


def attach(tmux: Tmux, paths: Paths, name: str, pane_id: str) -> None:
    """Pipe the pane's output into the agent's size-capped, rotated transcript."""
    log = paths.agent_log(name)
    ensure_dir(log.parent)
    command = "umask 077; exec " + shlex.join(
        ["sh", "-c", _PIPE, "sh", str(log), str(log_max_bytes())]
    )
    tmux.run("pipe-pane", "-t", pane_id, tmux_literal(command))


def tmux_literal(command: str) -> str:
    """Protect a shell command from tmux's own expansion of #{formats} and %strftime."""
    return command.replace("#", "##").replace("%", "%%")

_CONTROL = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC ... BEL/ST
    r"|\x1b[P^_][^\x1b]*\x1b\\"  # DCS/PM/APC ... ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[()][0-9A-Za-z]"  # charset selection
    r"|\x1b[@-Z\\-_=>78]"  # other two-byte escapes
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)


def clean(text: str) -> str:
    """Plain text of terminal output: escapes dropped, carriage-return overwrites applied."""
    text = text.replace("\r\n", "\n")
    lines = []
    for line in text.split("\n"):
        line = line.rsplit("\r", 1)[-1]
        lines.append(_CONTROL.sub("", line))
    return "\n".join(lines)


# Cursor moves: a full-screen TUI positions each piece it draws with one.
_MOVES = re.compile(r"\x1b\[[0-?]*[ -/]*[HfABEFGd]")


def printed(data: bytes) -> str:
    """Every piece of text the pane printed, in order, for searching (the outbox's evidence):
    unlike `clean`, nothing a later redraw overwrote is dropped — carriage returns and cursor
    moves start a new line, other control sequences are removed."""
    text = data.decode("utf-8", errors="replace")
    return _CONTROL.sub("", _MOVES.sub("\n", text).replace("\r", "\n"))


def tail(log: Path, n: int) -> list[str]:
    """The last `n` non-empty lines across the rotated file and the current one."""
    data = b""
    for path in (log.with_name(log.name + ".1"), log):
        try:
            data += path.read_bytes()
        except FileNotFoundError:
            continue
    lines = [ln for ln in clean(data.decode("utf-8", errors="replace")).split("\n") if ln.strip()]
    return lines[-n:] if n > 0 else lines


def follow(
    log: Path, interval: float = 0.25, stop: Callable[[], bool] = lambda: False
) -> Iterator[str]:
    """Yield cleaned text appended to `log`, surviving rotation (like `tail -F`), until
    `stop()` says so (it is asked while idle)."""
    position = log.stat().st_size if log.exists() else 0
    inode = log.stat().st_ino if log.exists() else None
    while not stop():
        try:
            st = log.stat()
        except FileNotFoundError:
            time.sleep(interval)
            continue
        if st.st_ino != inode or st.st_size < position:
            inode, position = st.st_ino, 0
        if st.st_size > position:
            with log.open("rb") as fh:
                fh.seek(position)
                chunk = fh.read()
            position += len(chunk)
            text = clean(chunk.decode("utf-8", errors="replace"))
            if text.strip():
                yield text
        else:
            time.sleep(interval)


def position(log: Path) -> tuple[int | None, int]:
    """Where the transcript ends now, as (inode, size); (None, 0) when there is none yet.
    What the pane prints later is read back with `after` (the outbox's evidence)."""
    try:
        st = log.stat()
    except FileNotFoundError:
        return None, 0
    return st.st_ino, st.st_size


def after(log: Path, inode: int | None, offset: int) -> bytes | None:
    """Everything the pane printed since `position` returned (inode, offset), across one
    rotation; None when that can no longer be known (rotated away twice, truncated, or
    there was no transcript then)."""
    rotated = log.with_name(log.name + ".1")
    if inode is None:
        return None
    chunks: list[bytes] = []
    for path in (rotated, log):
        try:
            with path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                if chunks:
                    chunks.append(fh.read())
                elif st.st_ino == inode:
                    if st.st_size < offset:
                        return None
                    fh.seek(offset)
                    chunks.append(fh.read())
        except FileNotFoundError:
            continue
    return b"".join(chunks) if chunks else None


def exists(log: Path) -> bool:
    return log.exists() or os.path.exists(str(log) + ".1")
