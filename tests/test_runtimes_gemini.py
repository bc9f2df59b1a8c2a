"""`send`, `status` and `stop` against Gemini CLI 0.61's recorded behaviour, end to end
through the CLI, on a real tmux server.

Gemini CLI itself is not installed here (and needs an account); the agent runs
tests/fixtures/programs/fake_gemini.py, a stand-in that draws Gemini 0.61's recorded screen
and reproduces its recorded input facts: an Enter that follows a paste too closely is folded
into it as a new line, a message sent while it works is queued under `Queued (press ↑ to
edit):`, Ctrl+C clears the input, then asks, then quits. It runs as the built-in `gemini`
runtime: the roster's PATH finds a `gemini` launcher that execs it as `gemini`, which is what
tmux then reports as the pane's command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fleetkit import agent, mosaic, ok, tmux, write_roster
from helpers import wait_until

FAKE = Path(__file__).resolve().parent / "fixtures" / "programs" / "fake_gemini.py"
PASTED = "pasted line one\npasted line two\npasted line three"


def start(env: dict[str, str], tmp: Path, *args: str) -> Path:
    """Start agent `gem` on the fake; returns its record file."""
    bindir = tmp / "bin"
    bindir.mkdir()
    launcher = bindir / "gemini"
    launcher.write_text(f'#!/bin/bash\nexec -a gemini "{sys.executable}" "{FAKE}" "$@"\n')
    launcher.chmod(0o755)
    record = tmp / "record.jsonl"
    record.touch()
    argv = json.dumps(["--record", str(record), *args])
    write_roster(
        env,
        "version: 1\nagents:\n  - name: gem\n    runtime: gemini\n"
        f"    args: {argv}\n    env: {{PATH: {json.dumps(f'{bindir}:/usr/bin:/bin')}}}\n",
    )
    ok(env, "start", "gem")
    wait_until(lambda: agent(env, "gem")["activity"] == "idle", what="gem idle")
    return record


def entries(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def send(env: dict[str, str], message: str) -> dict[str, Any]:
    res = mosaic(env, "send", "gem", "-", "--json", input=message)
    doc: dict[str, Any] = json.loads(res.out)["results"][0]
    return doc


def test_an_enter_folded_into_the_paste_is_retried_never_reported_accepted(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """A machine so slow that Enter arrives inside the fold window (forced: 1.2 s): each
    folded Enter leaves the text in the input, so send presses again; the message arrives
    once, whole, and `attempts` counts every press."""
    record = start(fleet_env, tmp_path, "--fold-ms", "1200")
    result = send(fleet_env, PASTED)
    assert result["outcome"] == "accepted", result
    seen = entries(record)
    folds = sum(1 for e in seen if e.get("fold"))
    assert folds >= 1, seen
    assert [e["message"] for e in seen if "message" in e] == [PASTED]
    assert result["attempts"] == folds + 1, (result, seen)
    assert not any(line.startswith(" > pasted line") for line in result["evidence"]), result


def test_the_paste_window_keeps_a_real_fold_window_from_folding(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """Gemini folds an Enter up to ~120 ms after a paste; the profile waits 300 ms after the
    paste shows, so the first press submits."""
    record = start(fleet_env, tmp_path, "--fold-ms", "150")
    result = send(fleet_env, PASTED)
    assert (result["outcome"], result["attempts"]) == ("accepted", 1), result
    assert entries(record) == [{"message": PASTED}]


def test_a_message_sent_while_busy_is_queued(fleet_env: dict[str, str], tmp_path: Path) -> None:
    record = start(fleet_env, tmp_path, "--think", "4")
    first = send(fleet_env, "first question")
    assert first["outcome"] == "accepted", first
    assert agent(fleet_env, "gem")["activity"] == "busy"
    second = send(fleet_env, "second question")
    assert second["outcome"] == "queued", second
    assert "  Queued (press ↑ to edit):" in second["evidence"]
    wait_until(lambda: len(entries(record)) == 2, timeout=15, what="the queued turn")
    assert entries(record) == [{"message": "first question"}, {"message": "second question"}]


def test_stop_quits_with_its_keys_even_with_text_in_the_input(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """Ctrl+C clears the draft, asks, and quits: three presses, not signals."""
    record = start(fleet_env, tmp_path)
    tmux(fleet_env, "send-keys", "-t", "=gem:", "-l", "a draft")
    wait_until(
        lambda: " > a draft" in tmux(fleet_env, "capture-pane", "-p", "-t", "=gem:"),
        what="the draft on screen",
    )
    ok(fleet_env, "stop", "gem")
    assert entries(record) == [{"quit": "ctrl-c"}]
