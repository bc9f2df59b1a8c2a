"""Reading agent transcripts (<home>/fleet/logs/<agent>.log, rotated to .log.1).

The pane's raw output is stored as is; terminal control sequences are removed only when a
person reads it, so nothing is lost from the record.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

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


def follow(log: Path, interval: float = 0.25) -> Iterator[str]:
    """Yield cleaned text appended to `log`, surviving rotation (like `tail -F`)."""
    position = log.stat().st_size if log.exists() else 0
    inode = log.stat().st_ino if log.exists() else None
    while True:
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


def exists(log: Path) -> bool:
    return log.exists() or os.path.exists(str(log) + ".1")
