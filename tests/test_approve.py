"""`mosaic fleet approve`: on the demo agent (real dialog, real keys), with nothing waiting
(nothing typed at all), and on the recorded Codex CLI and Claude Code approval screens."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from fleetkit import agent, mosaic, ok, tmux, write_roster
from helpers import wait_until
from mosaic.config.runtimes import builtin_runtimes
from mosaic.demo_agent import read_recording
from mosaic.screen.classify import Activity, Screen, classify

HERE = Path(__file__).resolve().parent
SCREENS = HERE / "fixtures" / "screens"


def screen(env: dict[str, str], name: str) -> str:
    return tmux(env, "capture-pane", "-p", "-t", f"={name}:")


def approve(env: dict[str, str], *args: str) -> tuple[int, dict[str, object]]:
    res = mosaic(env, "approve", *args, "--json")
    assert "Traceback" not in res.err
    return res.code, json.loads(res.out)


def demo_up(env: dict[str, str], rec: Path) -> None:
    write_roster(env, f"""\
version: 1
agents:
  - name: d1
    runtime: demo
    args: ["--think", "0", "--approval-every", "1", "--record", {json.dumps(str(rec))}]
""")  # fmt: skip
    ok(env, "start")
    wait_until(lambda: agent(env, "d1")["activity"] == "idle", what="d1 idle")


def test_approve_and_deny_the_demo_dialog(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    rec = tmp_path / "rec.jsonl"
    demo_up(env, rec)
    ok(env, "send", "d1", "rm the build dir")
    wait_until(lambda: agent(env, "d1")["activity"] == "awaiting_approval", what="dialog")
    code, doc = approve(env, "d1")
    assert code == 0, doc
    assert doc["outcome"] == "approved" and doc["ok"] is True and doc["keys"] == ["y"]
    wait_until(lambda: "allowed (y)" in screen(env, "d1"), what="allowed")
    assert "reply #1: rm the build dir" in screen(env, "d1")

    ok(env, "send", "d1", "and the cache")
    wait_until(lambda: agent(env, "d1")["activity"] == "awaiting_approval", what="dialog 2")
    code, doc = approve(env, "d1", "--deny")
    assert code == 0 and doc["outcome"] == "denied" and doc["keys"] == ["n"]
    wait_until(lambda: "reply #2: denied" in screen(env, "d1"), what="denied")
    assert read_recording(str(rec)) == ["rm the build dir", "and the cache"]
    ok(env, "stop")


def test_nothing_waiting_types_nothing(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    rec = tmp_path / "rec.jsonl"
    demo_up(env, rec)
    tmux(env, "send-keys", "-t", "=d1:", "-l", "half typed")  # an operator's unsent text
    wait_until(lambda: "demo> half typed" in screen(env, "d1"), what="typed")
    before = screen(env, "d1")
    for args in ([], ["--deny"]):
        code, doc = approve(env, "d1", *args)
        assert code == 1 and doc["outcome"] == "not_awaiting" and doc["keys"] == []
    # A later keystroke of ours shows up right after the text: nothing came in between.
    tmux(env, "send-keys", "-t", "=d1:", "-l", "!")
    wait_until(lambda: "demo> half typed!" in screen(env, "d1"), what="marker")
    assert screen(env, "d1") == before.replace("demo> half typed", "demo> half typed!")
    assert not rec.exists()
    res = mosaic(env, "approve", "d1")
    assert res.code == 1 and "not_awaiting" in res.out
    ok(env, "stop")


def test_approve_a_stopped_agent_or_unknown_one(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n")
    code, doc = approve(fleet_env, "d1")
    assert code == 1 and doc["outcome"] == "not_running"
    res = mosaic(fleet_env, "approve", "nobody")
    assert res.code == 2 and "unknown agent 'nobody'" in res.err


# --- the recorded screens of the real programs ------------------------------------------------


@pytest.mark.parametrize(
    ("runtime", "approve_keys"), [("codex", ("y",)), ("claude", ("1",))]
)
def test_recorded_dialogs_classify_and_have_allow_once_keys(
    runtime: str, approve_keys: tuple[str, ...]
) -> None:
    rt = builtin_runtimes()[runtime]
    ask = Screen.from_capture((SCREENS / runtime / "e_approval.txt").read_text())
    after = Screen.from_capture((SCREENS / runtime / "e2_after_approval.txt").read_text())
    assert classify(rt, ask).activity is Activity.AWAITING_APPROVAL
    assert classify(rt, after).activity is not Activity.AWAITING_APPROVAL
    assert rt.approve_keys == approve_keys and rt.deny_keys == ("Escape",)
    # The key is the allow-ONCE choice on the recorded dialog, never "always"/"don't ask".
    once = {"codex": "1. Yes, proceed (y)", "claude": "❯ 1. Yes"}[runtime]
    assert any(once in line for line in ask.lines)
    text = "\n".join(ask.lines)
    if runtime == "codex":
        assert "don't ask again" in text and "(p)" in text  # what `y` is not
    else:
        assert "2. Yes, and always allow" in text  # what `1` is not


@pytest.mark.parametrize(("runtime", "key"), [("codex", "y"), ("claude", "1")])
@pytest.mark.parametrize("deny", [False, True])
def test_approve_on_a_replay_of_the_recorded_screens(
    fleet_env: dict[str, str], tmp_path: Path, runtime: str, key: str, deny: bool
) -> None:
    """The built-in runtime profile against tests/replay_tui.py, which stands in for the real
    program: it shows the recorded dialog and records the keys it gets."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / runtime).symlink_to(sys.executable)  # the pane command reads as `codex`/`claude`
    keylog = tmp_path / "keys.log"
    args = [str(HERE / "replay_tui.py"), str(SCREENS / runtime / "e_approval.txt"), key,
            str(SCREENS / runtime / "e2_after_approval.txt"),
            str(SCREENS / runtime / "a_idle.txt"), str(keylog)]  # fmt: skip
    env = dict(fleet_env, PATH=f"{bindir}{os.pathsep}{fleet_env['PATH']}")
    write_roster(env, f"version: 1\nagents:\n  - name: x1\n    runtime: {runtime}\n"
                      f"    args: {json.dumps(args)}\n")  # fmt: skip
    ok(env, "start")
    wait_until(lambda: agent(env, "x1")["activity"] == "awaiting_approval", what="dialog")
    code, doc = approve(env, "x1", *(["--deny"] if deny else []))
    assert code == 0, doc
    assert doc["outcome"] == ("denied" if deny else "approved")
    sent = [bytes.fromhex(line).decode() for line in keylog.read_text().split()]
    assert sent == (["\x1b"] if deny else [key])
    ok(env, "stop")
