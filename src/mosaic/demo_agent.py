"""A tiny agent-like TUI, so a fleet can be tried and tested with no account or network.

Run as `python -m mosaic.demo_agent [--think S] [--swallow-enter-ms MS] [--crash-after N]
[--approval-every N] [--record FILE]`. Standard library only and nothing heavy imported, so
it starts in a few tens of milliseconds (tests start hundreds of them).

Screen format (the `demo` runtime's signatures in runtimes.py match exactly this; all are
anchored at column 0, where message text never is, so a reply that quotes them cannot fool
the classifier):

    mosaic demo agent · Enter sends · Ctrl-J new line · Ctrl-C clears · Ctrl-D quits
    demo> first line of the input            <- idle prompt (`ready`)
    ....> further lines of a multi-line input
    | thinking (1s)                          <- busy line, spinner |/-\\ (`busy`)
    Allow? (y/n)                             <- every Nth reply with --approval-every (`approval`)
    reply #1: <first 60 chars, one line> (<length> chars)

The cursor always sits where the state is: at the end of the input when idle, at the end of
the busy line or the question otherwise. A question is overwritten with its answer once
answered, so a stale `Allow?` never lingers above an idle prompt.

Keys: Enter (CR) submits; Ctrl-J (LF) inserts a line feed; a bracketed paste (ESC[200~ …
ESC[201~) is inserted verbatim, line feeds and all, as part of one message; Backspace
edits; Ctrl-C / Ctrl-U clear the input; Ctrl-D on an empty input quits with status 0. Other
escape sequences (arrows…) are ignored. An empty or blank submit is ignored, like agents do.

Typed-ahead: bytes arriving while a turn runs are kept, with their arrival times, and
processed when the prompt returns, so text + Enter sent during a turn is submitted after it
(a queue) and `--swallow-enter-ms` judges the Enter by when it really arrived. While the
`Allow? (y/n)` question is shown, only y/Y (allow) and n/N/Ctrl-C/Esc (deny) mean anything;
other input is dropped, as a real approval dialog would.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import os
import select
import signal
import sys
import time
import unicodedata
from collections import deque
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, NamedTuple

PROMPT = "demo> "
CONTINUATION = "....> "
SPINNER = "|/-\\"
APPROVAL_QUESTION = "Allow? (y/n) "
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"
CRASH_STATUS = 3
ESC_TIMEOUT_S = 0.05
"""A lone ESC byte is an Escape key press only if nothing follows it this quickly."""


class _Exit(Exception):
    """Leave the main loop with an exit status (the terminal is restored on the way out)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Event(NamedTuple):
    """One decoded input: `kind` is text, paste, enter, backspace, clear, eof_key or escape.

    A NamedTuple, not a dataclass: importing dataclasses (and with it inspect) would double
    the agent's start-up time.
    """

    kind: str
    text: str
    at: float


_CONTROL_KEYS = {
    0x0D: "enter",
    0x7F: "backspace",
    0x08: "backspace",
    0x03: "clear",
    0x15: "clear",
    0x04: "eof_key",
}


def _partial_suffix(data: bytes, marker: bytes) -> int:
    """Length of the longest tail of `data` that could be the start of `marker`."""
    for size in range(min(len(data), len(marker) - 1), 0, -1):
        if marker.startswith(data[-size:]):
            return size
    return 0


class KeyDecoder:
    """Turns raw terminal bytes into events, keeping partial sequences between reads.

    Paste content is kept as bytes until the end marker and decoded with surrogateescape,
    so whatever was pasted is recorded byte for byte.
    """

    def __init__(self) -> None:
        self.pending = b""
        self.in_paste = False
        self.paste = bytearray()
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")

    def feed(self, data: bytes, at: float) -> list[Event]:
        self.pending += data
        events: list[Event] = []
        while self.pending:
            if self.in_paste:
                end = self.pending.find(PASTE_END)
                if end < 0:
                    keep = _partial_suffix(self.pending, PASTE_END)
                    self.paste += self.pending[: len(self.pending) - keep]
                    self.pending = self.pending[len(self.pending) - keep :]
                    break
                self.paste += self.pending[:end]
                self.pending = self.pending[end + len(PASTE_END) :]
                self.in_paste = False
                pasted = bytes(self.paste).decode("utf-8", "surrogateescape")
                events.append(Event("paste", pasted, at))
                self.paste.clear()
                continue
            byte = self.pending[0]
            if byte == 0x1B:
                if not self._escape(events, at):
                    break
                continue
            if byte >= 0x20 and byte != 0x7F:
                run = 1
                while run < len(self.pending) and self.pending[run] >= 0x20:
                    if self.pending[run] == 0x7F:
                        break
                    run += 1
                text = self._utf8.decode(self.pending[:run])
                self.pending = self.pending[run:]
                if text:
                    events.append(Event("text", text, at))
                continue
            self.pending = self.pending[1:]
            if byte in _CONTROL_KEYS:
                events.append(Event(_CONTROL_KEYS[byte], "", at))
            elif byte in (0x0A, 0x09):
                events.append(Event("text", chr(byte), at))
        return _merge_text(events)

    def _escape(self, events: list[Event], at: float) -> bool:
        """Consume one escape sequence; False when it is still incomplete."""
        data = self.pending
        if data.startswith(PASTE_START):
            self.pending = data[len(PASTE_START) :]
            self.in_paste = True
            return True
        if len(data) == 1:
            return False
        if data[1:2] == b"[":
            for i in range(2, len(data)):
                if 0x40 <= data[i] <= 0x7E:
                    self.pending = data[i + 1 :]
                    return True
            return False
        if data[1:2] == b"O":
            if len(data) < 3:
                return False
            self.pending = data[3:]
            return True
        self.pending = data[2:]  # Alt+key: ignored
        return True

    def lone_escape(self, at: float) -> list[Event]:
        """Nothing followed an ESC in time: it was the Escape key."""
        if self.pending == b"\x1b" and not self.in_paste:
            self.pending = b""
            return [Event("escape", "", at)]
        return []


def _merge_text(events: list[Event]) -> list[Event]:
    merged: list[Event] = []
    for ev in events:
        if merged and ev.kind == "text" and merged[-1].kind == "text":
            merged[-1] = Event("text", merged[-1].text + ev.text, ev.at)
        else:
            merged.append(ev)
    return merged


def cells(text: str) -> int:
    """Terminal columns `text` takes (wide East Asian characters take two)."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _printable(text: str) -> str:
    """What the screen shows for input text: tabs as spaces, other controls dropped."""
    out = []
    for ch in text.replace("\t", "    "):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("?")
        elif unicodedata.category(ch)[0] != "C":
            out.append(ch)
    return "".join(out)


def input_lines(text: str, cols: int, max_rows: int) -> list[str]:
    """The prompt lines for `text`, newest last, fitting in `max_rows` terminal rows.

    Long input keeps its end visible (where the cursor is), the way agent composers scroll.
    """
    logical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cols = max(cols, 10)
    shown: list[str] = []
    used = 0
    for index in range(len(logical) - 1, -1, -1):
        prefix = PROMPT if index == 0 else CONTINUATION
        body = _printable(logical[index])
        left = max_rows - used - (1 if index > 0 else 0)
        rows = _rows(prefix + body, cols)
        if rows > left:
            if shown or left < 1:
                break
            room = left * cols - cells(prefix) - 1
            while body and cells(body) > room:
                body = body[max(1, (cells(body) - room) // 2) :]
            body = "…" + body
            rows = _rows(prefix + body, cols)
        shown.append(prefix + body)
        used += rows
    hidden = len(logical) - len(shown)
    if hidden:
        shown.append(f"{PROMPT}[… {hidden} earlier line{'s' if hidden > 1 else ''}]")
    shown.reverse()
    return shown


def _rows(line: str, cols: int) -> int:
    return max(1, -(-cells(line) // cols))


class Terminal:
    """Raw mode and bracketed paste on entry; both restored on exit, whatever happens."""

    def __init__(self, fd_in: int = 0, fd_out: int = 1) -> None:
        self.fd_in = fd_in
        self.fd_out = fd_out
        self._saved: list[Any] | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[Terminal]:
        import termios
        import tty

        if os.isatty(self.fd_in):
            self._saved = termios.tcgetattr(self.fd_in)
            tty.setraw(self.fd_in)
        self.write("\x1b[?2004h")
        try:
            yield self
        finally:
            with contextlib.suppress(OSError):
                self.write("\x1b[?2004l\r\n")
            if self._saved is not None:
                with contextlib.suppress(OSError, termios.error):
                    termios.tcsetattr(self.fd_in, termios.TCSADRAIN, self._saved)

    def write(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        while data:
            written = os.write(self.fd_out, data)
            data = data[written:]

    def size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.fd_out)
        except OSError:
            return 80, 24
        return size.columns, size.lines

    def read(self, timeout: float | None) -> bytes | None:
        """Bytes that arrived within `timeout` (None: none yet); b"" means end of input."""
        ready, _, _ = select.select([self.fd_in], [], [], timeout)
        if not ready:
            return None
        try:
            return os.read(self.fd_in, 65536)
        except OSError:
            return b""


class Options(NamedTuple):
    think: float
    swallow_enter_ms: int
    crash_after: int
    approval_every: int
    record: str | None


class DemoAgent:
    def __init__(self, options: Options, term: Terminal) -> None:
        self.opt = options
        self.term = term
        self.decoder = KeyDecoder()
        self.inbox: deque[tuple[float, bytes]] = deque()
        self.text = ""
        self.last_text_at = float("-inf")
        self.cursor_row = 0  # rows from the top of the input area down to the cursor
        self.count = 0

    # --- main loop -----------------------------------------------------------------------

    def run(self) -> int:
        self.term.write(
            "mosaic demo agent · Enter sends · Ctrl-J new line · Ctrl-C clears · Ctrl-D quits\r\n"
        )
        self.redraw()
        while True:
            if self.inbox:
                at, data = self.inbox.popleft()
                events = self.decoder.feed(data, at)
            else:
                timeout = ESC_TIMEOUT_S if self.decoder.pending == b"\x1b" else None
                data_or_none = self.term.read(timeout)
                now = time.monotonic()
                if data_or_none is None:
                    events = self.decoder.lone_escape(now)
                elif not data_or_none:
                    return 0
                else:
                    events = self.decoder.feed(data_or_none, now)
            changed = False
            for ev in events:
                changed = self.handle(ev) or changed
            if changed:
                self.redraw()

    def handle(self, ev: Event) -> bool:
        """Apply one event at the prompt; True when the input area must be redrawn."""
        if ev.kind in ("text", "paste"):
            self.text += ev.text
            self.last_text_at = ev.at
            return True
        if ev.kind == "backspace":
            self.text = self.text[:-1]
            return True
        if ev.kind == "clear":
            self.text = ""
            return True
        if ev.kind == "eof_key" and not self.text:
            self.term.write("\r\n")
            raise _Exit(0)
        if ev.kind == "enter":
            swallow = self.opt.swallow_enter_ms / 1000
            if swallow and ev.at - self.last_text_at < swallow:
                return False  # swallowed: the text stays, a later Enter submits it
            if not self.text.strip():
                return False
            self.turn(self.text)
            return True
        return False

    # --- one turn ------------------------------------------------------------------------

    def turn(self, message: str) -> None:
        self.count += 1
        self.record(message)
        self.text = ""
        self.cursor_row = 0
        self.term.write("\r\n")
        start = time.monotonic()
        frame = 0
        while True:
            elapsed = time.monotonic() - start
            spin = SPINNER[frame % len(SPINNER)]
            self.term.write(f"\r\x1b[K{spin} thinking ({int(elapsed)}s)")
            frame += 1
            if elapsed >= self.opt.think:
                break
            self.collect(min(0.1, self.opt.think - elapsed))
        denied = False
        if self.opt.approval_every and self.count % self.opt.approval_every == 0:
            denied = not self.ask()
        summary = " ".join(_printable(word) for word in message.split())[:60]
        reply = "denied" if denied else f"{summary} ({len(message)} chars)"
        self.term.write(f"\r\x1b[Kreply #{self.count}: {reply}\r\n")
        if self.opt.crash_after and self.count >= self.opt.crash_after:
            self.term.write(f"demo agent: crashing after {self.count} messages (--crash-after)")
            raise _Exit(CRASH_STATUS)

    def collect(self, timeout: float) -> None:
        """Wait up to `timeout`, keeping whatever is typed meanwhile for the next prompt."""
        data = self.term.read(max(timeout, 0.0))
        if data == b"":
            raise _Exit(0)
        if data:
            self.inbox.append((time.monotonic(), data))

    def ask(self) -> bool:
        self.term.write(f"\r\x1b[K{APPROVAL_QUESTION}")
        while True:
            data = self.term.read(None)
            if not data:
                raise _Exit(0)
            for byte in data:
                if byte in b"yY":
                    self.term.write("\r\x1b[Kallowed (y)\r\n")
                    return True
                if byte in b"nN\x03\x1b":
                    self.term.write("\r\x1b[Kdenied (n)\r\n")
                    return False

    def record(self, message: str) -> None:
        """One JSON line per accepted message: line feeds inside it are escaped."""
        if not self.opt.record:
            return
        line = json.dumps({"n": self.count, "text": message}, ensure_ascii=True) + "\n"
        fd = os.open(self.opt.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)

    # --- drawing -------------------------------------------------------------------------

    def redraw(self) -> None:
        """Repaint the input area in place: up to its top, erase below, draw, note the cursor."""
        cols, rows = self.term.size()
        lines = input_lines(self.text, cols, max(1, rows - 3))
        up = f"\x1b[{self.cursor_row}A" if self.cursor_row else ""
        self.term.write("\r" + up + "\x1b[J" + "\r\n".join(lines))
        cols = max(cols, 10)
        self.cursor_row = sum(_rows(line, cols) for line in lines[:-1]) + (
            (cells(lines[-1]) - 1) // cols
        )


def read_recording(path: str) -> list[str]:
    """The messages a `--record` file holds, in order (for tests and curious people)."""
    with open(path, encoding="ascii") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m mosaic.demo_agent",
        description="An agent-like TUI for trying and testing mosaic fleet offline.",
    )
    parser.add_argument("--think", type=float, default=0.5, help="seconds of busy per reply")
    parser.add_argument(
        "--swallow-enter-ms",
        type=int,
        default=0,
        help="ignore Enter arriving within MS of the last typed or pasted text",
    )
    parser.add_argument("--crash-after", type=int, default=0, help="exit 3 after N replies")
    parser.add_argument(
        "--approval-every", type=int, default=0, help="ask Allow? (y/n) before every Nth reply"
    )
    parser.add_argument("--record", help="append each accepted message as a JSON line here")
    ns = parser.parse_args(argv)
    return Options(
        think=max(0.0, ns.think),
        swallow_enter_ms=max(0, ns.swallow_enter_ms),
        crash_after=max(0, ns.crash_after),
        approval_every=max(0, ns.approval_every),
        record=ns.record,
    )


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    term = Terminal()
    try:
        with term.session():
            return DemoAgent(options, term).run()
    except _Exit as done:
        return done.status


if __name__ == "__main__":
    sys.exit(main())
