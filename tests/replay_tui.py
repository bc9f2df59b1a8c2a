"""A tiny replay TUI for approval tests: it STANDS IN FOR the real Codex CLI / Claude Code,
which cannot run here. It shows a recorded approval screen (tests/fixtures/screens/), records
every key it receives, and switches to the recorded screen that followed when the key that
answers the dialog arrives (or to an idle screen on Escape).

    python replay_tui.py ASK_SCREEN APPROVE_KEY AFTER_APPROVE AFTER_DENY KEYLOG
"""

import os
import sys
import termios
import tty


def show(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        lines = f.read().rstrip("\n").split("\n")
    sys.stdout.write("\x1b[H\x1b[2J" + "\r\n".join(lines))
    sys.stdout.flush()


def main() -> int:
    ask, key, after, denied, keylog = sys.argv[1:6]
    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        show(ask)
        while True:
            data = os.read(0, 1024)
            if not data:
                return 0
            with open(keylog, "ab") as f:
                f.write(data.hex().encode() + b"\n")
            if data == key.encode():
                show(after)
            elif data == b"\x1b":
                show(denied)
            elif data == b"\x03":
                return 0
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    sys.exit(main())
