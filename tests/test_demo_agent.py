"""The demo agent in real tmux (private socket per test), read with the real classifier.

Each test starts `python -m mosaic.demo_agent` in a 160x50 pane and drives it the way
`send` will: `send-keys -l`, bracketed paste through a named buffer, Enter. `--record`
proves byte-exact delivery. Panes keep their exit status (remain-on-exit) so crashes and
signals can be checked.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from helpers import wait_until
from mosaic.config.runtimes import builtin_runtimes
from mosaic.demo_agent import (
    PROMPT,
    Event,
    KeyDecoder,
    cells,
    input_lines,
    read_recording,
)
from mosaic.screen.classify import (
    Activity,
    Classification,
    Screen,
    classify,
    input_text,
    message_in_input,
)

DEMO = builtin_runtimes()["demo"]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


class DemoPane:
    """One demo agent in a private tmux server; the fleet_env fixture kills the server.

    The agent runs under a tiny `sh` that writes its exit status to a file: tmux 3.3a was
    seen to lose `pane_dead_status` (empty) when a raw-mode program exits, so the test does
    not rely on it.
    """

    def __init__(self, env: dict[str, str], tmp: Path, *args: str) -> None:
        self.env = env
        self.socket = env["MOSAIC_TMUX_SOCKET"]
        self.record = tmp / "record.jsonl"
        self.status = tmp / "status"
        command = [sys.executable, "-m", "mosaic.demo_agent", "--record", str(self.record)]
        wrapper = ["sh", "-c", '"$@"; echo $? > "$0"', str(self.status)]
        self.tmux(
            "new-session", "-d", "-s", "demo", "-x", "160", "-y", "50", "--",
            *wrapper, *command, *args,
            ";", "set-option", "-t", "demo", "remain-on-exit", "on",
        )  # fmt: skip
        self.id = self.tmux("display-message", "-p", "-t", "demo", "#{pane_id}").strip()
        wait_until(lambda: self.activity() is Activity.IDLE, what="the idle prompt")

    def agent_pid(self) -> int:
        shell = int(self.tmux("display-message", "-p", "-t", self.id, "#{pane_pid}"))
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        return int(children[0])

    def tmux(self, *args: str, stdin: bytes | None = None) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            timeout=10,
        )
        assert proc.returncode == 0, (args, proc.stderr)
        return proc.stdout.decode()

    def screen(self) -> Screen:
        info = self.tmux(
            "display-message", "-p", "-t", self.id, "#{cursor_x} #{cursor_y} #{pane_width}"
        )
        x, y, width = (int(v) for v in info.split())
        text = self.tmux("capture-pane", "-p", "-t", self.id)
        return Screen.from_capture(text, cursor_x=x, cursor_y=y, width=width)

    def activity(self) -> Activity:
        return classify(DEMO, self.screen()).activity

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.id, "-l", "--", text)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.id, *keys)

    def paste(self, text: str) -> None:
        name = f"t{uuid.uuid4().hex[:8]}"
        self.tmux("load-buffer", "-b", name, "-", stdin=text.encode())
        self.tmux("paste-buffer", "-p", "-r", "-d", "-b", name, "-t", self.id)

    def recorded(self) -> list[str]:
        return read_recording(str(self.record)) if self.record.exists() else []

    def dead_status(self) -> int | None:
        text = self.status.read_text() if self.status.exists() else ""
        return int(text) if text.strip() else None

    def shows(self, needle: str) -> bool:
        return any(needle in line for line in self.screen().lines)


def wait_activity(pane: DemoPane, activity: Activity) -> Classification:
    def check() -> Classification | None:
        result = classify(DEMO, pane.screen())
        return result if result.activity is activity else None

    found = wait_until(check, what=str(activity))
    assert found is not None
    return found


def start(env: dict[str, str], tmp: Path, *args: str) -> DemoPane:
    return DemoPane(env, tmp, *args)


def test_idle_typed_submit_busy_reply_idle(fleet_env: dict[str, str], tmp_path: Path) -> None:
    pane = start(fleet_env, tmp_path, "--think", "1")
    screen = pane.screen()
    assert input_text(DEMO, screen) == ""
    assert screen.lines[screen.cursor_y] == PROMPT.rstrip()
    pane.type("hello there")
    wait_until(lambda: message_in_input(DEMO, pane.screen(), "hello there"), what="typed text")
    assert pane.activity() is Activity.IDLE
    pane.keys("Enter")
    result = wait_activity(pane, Activity.BUSY)
    assert result.evidence[0].startswith(("| thinking", "/ thinking", "- thinking", "\\ thinking"))
    assert not message_in_input(DEMO, pane.screen(), "hello there")
    wait_until(lambda: pane.shows("reply #1: hello there (11 chars)"), what="the reply")
    wait_until(lambda: pane.activity() is Activity.IDLE, what="idle again")
    assert pane.recorded() == ["hello there"]
    assert input_text(DEMO, pane.screen()) == ""


TRICKY = (
    "first line with a\ttab and \"double\" and 'single' quotes\n"
    "$(rm -rf /tmp/nope) `backticks` ; echo pwned && Enter C-c\n"
    "\n"
    "ünïcödé — 日本語 ✓ émoji 🎉\n"
    "   indented last line"
)


def test_bracketed_paste_is_one_verbatim_message(fleet_env: dict[str, str], tmp_path: Path) -> None:
    pane = start(fleet_env, tmp_path, "--think", "0.2")
    pane.paste(TRICKY)
    wait_until(lambda: message_in_input(DEMO, pane.screen(), TRICKY), what="pasted text")
    assert pane.recorded() == []  # the line feeds did not submit anything
    assert pane.activity() is Activity.IDLE
    pane.keys("Enter")
    wait_until(lambda: pane.recorded(), what="the recording")
    assert pane.recorded() == [TRICKY]
    wait_until(lambda: pane.shows(f"({len(TRICKY)} chars)"), what="the reply")
    wait_until(lambda: pane.activity() is Activity.IDLE, what="idle again")


def test_large_paste_arrives_whole(fleet_env: dict[str, str], tmp_path: Path) -> None:
    pane = start(fleet_env, tmp_path, "--think", "0")
    big = "".join(f"line {i:05d} {'x' * 90}\n" for i in range(700)) + "the end"
    assert len(big.encode()) > 64 * 1024
    pane.paste(big)
    wait_until(lambda: message_in_input(DEMO, pane.screen(), big), what="the paste", timeout=20)
    pane.keys("Enter")
    wait_until(lambda: pane.recorded(), what="the recording", timeout=20)
    assert pane.recorded() == [big]


def test_swallowed_enter_then_a_later_one_submits(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    pane = start(fleet_env, tmp_path, "--swallow-enter-ms", "400", "--think", "0.2")
    pane.paste("please do it")
    pane.keys("Enter")  # within 400 ms of the paste: ignored
    # The marker: a key typed after the Enter. The agent handles its input in order, so
    # once the key shows, the Enter has been handled, and it submitted nothing.
    pane.type("!")
    wait_until(lambda: message_in_input(DEMO, pane.screen(), "please do it!"),
               what="the text still in the input, then the marker")  # fmt: skip
    assert pane.recorded() == []

    def later_enter() -> list[str]:
        # One Enter per look: those within 400 ms of the `!` are ignored too.
        pane.keys("Enter")
        return pane.recorded()

    assert wait_until(later_enter, interval=0.25, what="a later Enter") == ["please do it!"]
    wait_until(lambda: pane.activity() is Activity.IDLE, what="idle again")
    assert pane.recorded() == ["please do it!"]  # the extra Enters met an empty input
    assert not message_in_input(DEMO, pane.screen(), "please do it!")


def test_text_and_enter_in_one_call_is_swallowed(fleet_env: dict[str, str], tmp_path: Path) -> None:
    pane = start(fleet_env, tmp_path, "--swallow-enter-ms", "200")
    pane.keys("-l", "--", "same call")
    pane.tmux("send-keys", "-t", pane.id, "-l", "--", "!", ";", "send-keys", "-t", pane.id, "Enter")
    # The marker: a key typed after the Enter shows only once the Enter was handled.
    pane.type("?")
    wait_until(lambda: message_in_input(DEMO, pane.screen(), "same call!?"),
               what="the text still in the input, then the marker")  # fmt: skip
    assert pane.recorded() == []


def test_crash_after_exits_non_zero(fleet_env: dict[str, str], tmp_path: Path) -> None:
    pane = start(fleet_env, tmp_path, "--crash-after", "2", "--think", "0")
    for n, text in enumerate(("one", "two"), start=1):
        pane.type(text)
        pane.keys("Enter")
        count = n

        def recorded(count: int = count) -> bool:
            return len(pane.recorded()) == count

        wait_until(recorded, what=f"message {n}")
    assert wait_until(pane.dead_status, what="the crash") == 3


def test_approval_prompt_waits_for_the_operator(fleet_env: dict[str, str], tmp_path: Path) -> None:
    pane = start(fleet_env, tmp_path, "--approval-every", "1", "--think", "0.1")
    pane.type("run the tool")
    wait_until(lambda: message_in_input(DEMO, pane.screen(), "run the tool"), what="typed")
    pane.keys("Enter")
    result = wait_activity(pane, Activity.AWAITING_APPROVAL)
    assert result.evidence == ("Allow? (y/n)",)
    pane.keys("-l", "y")
    wait_until(lambda: pane.shows("reply #1: run the tool (12 chars)"), what="the reply")
    wait_until(lambda: pane.activity() is Activity.IDLE, what="idle")
    # The answered question was overwritten, so nothing stale keeps it "awaiting".
    assert not pane.shows("Allow? (y/n)")
    pane.type("again")
    pane.keys("Enter")
    wait_until(lambda: pane.activity() is Activity.AWAITING_APPROVAL, what="the second prompt")
    pane.keys("-l", "n")
    wait_until(lambda: pane.shows("reply #2: denied"), what="denied")
    wait_until(lambda: pane.activity() is Activity.IDLE, what="idle")


def test_input_typed_while_busy_waits_for_the_next_prompt(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    pane = start(fleet_env, tmp_path, "--think", "1.5")
    pane.type("first")
    pane.keys("Enter")
    wait_until(lambda: pane.activity() is Activity.BUSY, what="busy")
    pane.type("second")
    wait_until(lambda: pane.shows("reply #1: first"), what="first reply")
    wait_until(lambda: message_in_input(DEMO, pane.screen(), "second"), what="typed-ahead")
    assert pane.recorded() == ["first"]


def test_editing_keys_and_quit(fleet_env: dict[str, str], tmp_path: Path) -> None:
    pane = start(fleet_env, tmp_path)
    pane.type("oops")
    pane.keys("BSpace", "BSpace")
    wait_until(lambda: input_text(DEMO, pane.screen()) == "oo", what="backspace")
    pane.keys("C-c")
    wait_until(lambda: input_text(DEMO, pane.screen()) == "", what="Ctrl-C clears")
    pane.keys("C-d")
    assert wait_until(lambda: pane.dead_status() is not None, what="exit") is True
    assert pane.dead_status() == 0


def test_sigterm_restores_and_exits(fleet_env: dict[str, str], tmp_path: Path) -> None:
    pane = start(fleet_env, tmp_path)
    os.kill(pane.agent_pid(), signal.SIGTERM)
    assert wait_until(pane.dead_status, what="exit") == 128 + signal.SIGTERM


# --- pure parts --------------------------------------------------------------------------


def test_decoder_splits_paste_markers_across_reads() -> None:
    dec = KeyDecoder()
    data = b"ab\x1b[200~x\r\ny\x1b[201~\r"
    events: list[Event] = []
    for i in range(len(data)):
        events += dec.feed(data[i : i + 1], float(i))
    kinds = [(e.kind, e.text) for e in events]
    assert kinds == [("text", "a"), ("text", "b"), ("paste", "x\r\ny"), ("enter", "")]


def test_decoder_keys_and_utf8() -> None:
    dec = KeyDecoder()
    events = dec.feed("é日\x1b[A\t\x7f\x03\x04\n".encode(), 0.0)
    assert [(e.kind, e.text) for e in events] == [
        ("text", "é日\t"),  # the arrow key between them is ignored
        ("backspace", ""),
        ("clear", ""),
        ("eof_key", ""),
        ("text", "\n"),
    ]
    assert dec.feed(b"\x1b", 1.0) == []
    assert [e.kind for e in dec.lone_escape(1.1)] == ["escape"]


def test_input_lines_fit_the_pane() -> None:
    assert input_lines("", 80, 10) == [PROMPT]
    assert input_lines("a\nb", 80, 10) == [PROMPT + "a", "....> b"]
    many = "\n".join(str(i) for i in range(100))
    shown = input_lines(many, 80, 10)
    assert len(shown) <= 10 and shown[-1] == "....> 99" and "earlier lines" in shown[0]
    long = input_lines("z" * 5000 + "END", 80, 5)
    assert sum(-(-cells(x) // 80) for x in long) <= 5 and long[-1].endswith("END")
    assert cells("日本") == 4
