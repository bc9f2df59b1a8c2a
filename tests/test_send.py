"""`mosaic fleet send` end to end: real tmux, real bash and the demo agent.

Delivery is judged by side effects, never by what send says about itself: bash runs the
message (which writes a file, compared byte for byte) and the demo agent records every
message it accepted (`--record`). The pure decisions (judge, retry gaps, exit-code folding,
argument splitting) have unit tests at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from fleetkit import agent, mosaic, ok, tmux, write_roster
from helpers import MOSAIC, Result, wait_until
from mosaic.demo_agent import read_recording
from mosaic.errors import UsageError
from mosaic.send import delivery as send_mod
from mosaic.send.outcome import Outcome

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

# `host` (docs/hosts.md): the machine the agent runs on, `local` for this one.
RESULT_KEYS = {"agent", "outcome", "accepted", "attempts", "seconds", "evidence", "host"}


# --- fleet helpers -----------------------------------------------------------------------


def roster(agents: list[tuple[str, str, list[str], dict[str, str]]]) -> str:
    """A roster from (name, runtime, args, env) tuples; JSON is valid YAML flow syntax."""
    lines = ["version: 1", "agents:"]
    for name, runtime, args, env in agents:
        lines += [f"  - name: {name}", f"    runtime: {runtime}"]
        if args:
            lines.append(f"    args: {json.dumps(args)}")
        if env:
            lines.append(f"    env: {json.dumps(env)}")
    return "\n".join(lines) + "\n"


def up(env: dict[str, str], body: str, names: list[str]) -> None:
    """Start the fleet and wait until every agent shows its idle prompt."""
    write_roster(env, body)
    ok(env, "start")

    def idle(name: str) -> bool:
        row = agent(env, name)
        return bool(row["state"] == "running" and row["activity"] == "idle")

    for name in names:
        wait_until(partial(idle, name), timeout=15, what=f"{name} idle")


def send(env: dict[str, str], *args: str, input: str | bytes | None = None) -> Result:
    return mosaic(env, "send", *args, input=input)


def results(res: Result) -> list[dict[str, Any]]:
    doc = json.loads(res.out)
    assert set(doc) == {"results"}
    rows: list[dict[str, Any]] = doc["results"]
    return rows


def screen(env: dict[str, str], name: str) -> str:
    return tmux(env, "capture-pane", "-p", "-t", f"={name}:")


def file_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def holds(path: Path, data: bytes) -> Callable[[], bool]:
    return lambda: file_bytes(path) == data


def recording(path: Path) -> list[str]:
    return read_recording(str(path)) if path.exists() else []


def assert_nothing_typed(env: dict[str, str], tmp: Path, shells: list[str], out: Path) -> None:
    """No keystroke of a refused send reached these bash agents.

    The marker is a later command typed straight into each shell: bash reads its terminal
    in order, so anything typed before it is either run first (and `out` exists) or still
    on the line, where it joins the marker's command line and spoils the marker's output.
    """
    for name in shells:
        marker = tmp / f"marker-{name}.txt"
        tmux(env, "send-keys", "-t", f"={name}:", "-l", "--", f"echo marker > {marker}")
        tmux(env, "send-keys", "-t", f"={name}:", "Enter")
        wait_until(partial(file_bytes, marker), what=f"{name} ran the marker")
        assert file_bytes(marker) == b"marker\n", name
    assert not out.exists()


# --- bash: verbatim text, proven by what bash ran ----------------------------------------


@needs_tmux
def test_tricky_text_arrives_byte_exact(fleet_env: dict[str, str], tmp_path: Path) -> None:
    """tmux key names, shell syntax, quotes, tabs, non-ASCII and a leading `-` are text.

    `history 1` writes the very line bash received, so the file holds exactly what was typed
    (the tricky part sits in a comment, so nothing in it runs even if it were mangled).
    """
    up(fleet_env, roster([("b1", "shell", [], {})]), ["b1"])
    out = tmp_path / "hist.txt"
    message = (
        f"-x 2>/dev/null; history 1 > {out} # Enter C-c Escape Up $(touch {tmp_path}/pwned) "
        "`id` ; a;b 'single' \"double\" \\back\ttab\t\tend é ñ ü 日本語 ✓ -- -n %s #{pane_id}"
    )
    res = send(fleet_env, "b1", "--json", "--", message)
    assert res.code == 0, res.err
    [row] = results(res)
    assert row["outcome"] == "accepted" and row["accepted"] is True
    data = wait_until(lambda: file_bytes(out), what="history written")
    m = re.fullmatch(rb"\s*\d+\s\s(.*)\n", data, re.DOTALL)
    assert m is not None, data
    assert m.group(1) == message.encode()
    assert not (tmp_path / "pwned").exists()


@needs_tmux
def test_multiline_heredoc_is_one_message(fleet_env: dict[str, str], tmp_path: Path) -> None:
    up(fleet_env, roster([("b1", "shell", [], {})]), ["b1"])
    out, count = tmp_path / "heredoc.txt", tmp_path / "count.txt"
    body = "line one $(not run) `nor this`\n\ttabbed line 'q' \"dq\"\n\nlast line é\n"
    message = f"cat > {out} <<'MOSAIC_EOF'\n{body}MOSAIC_EOF\necho ran >> {count}"
    res = send(fleet_env, "b1", message)
    assert res.code == 0, res.out + res.err
    assert re.match(r"b1: accepted \(\d+ attempts?, \d+\.\d\ds\)", res.out)
    wait_until(lambda: file_bytes(count) == b"ran\n", what="the command ran")
    assert file_bytes(out) == body.encode()
    # Ran once, not once per line: bash runs its input in order, so a second run (the text
    # typed or submitted twice) would land in the file before this later marker does.
    assert send(fleet_env, "b1", f"echo marker >> {count}").code == 0
    wait_until(lambda: file_bytes(count) != b"ran\n", what="the marker")
    assert file_bytes(count) == b"ran\nmarker\n"


@needs_tmux
def test_64k_message_from_stdin(fleet_env: dict[str, str], tmp_path: Path) -> None:
    up(fleet_env, roster([("b1", "shell", [], {})]), ["b1"])
    out = tmp_path / "big.txt"
    head = f"cat > {out} <<'MOSAIC_EOF'\n"
    tail = "MOSAIC_EOF\n"
    size = 64 * 1024 - len(head) - len(tail)
    lines = []
    total = 0
    n = 0
    while total < size:
        line = f"{n:05d} the quick brown fox é jumps over $(the) `lazy` dog\t;\n"
        lines.append(line)
        total += len(line.encode())
        n += 1
    body = "".join(lines).encode()[:size]
    body = body[: body.rfind(b"\n") + 1]
    message = head.encode() + body + tail.encode()
    res = send(fleet_env, "b1", "--json", "-", input=message)
    assert res.code == 0, res.out + res.err
    assert results(res)[0]["outcome"] == "accepted"
    wait_until(lambda: file_bytes(out) == body, timeout=20, what="64 KiB written")


@needs_tmux
def test_200_sequential_sends_no_loss_no_duplicate(
    fleet_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library entry point the CLI uses (no interpreter start-up per send)."""
    from mosaic.config import paths as paths_mod
    from mosaic.fleet import open_fleet

    up(fleet_env, roster([("b1", "shell", [], {})]), ["b1"])
    for key in ("TMUX_TMPDIR", "MOSAIC_HOME", "MOSAIC_TMUX_SOCKET", "HOME"):
        monkeypatch.setenv(key, fleet_env[key])
    monkeypatch.delenv("TMUX", raising=False)
    fleet = open_fleet(paths_mod.resolve(env=fleet_env), env=fleet_env)
    targets = [("b1", fleet.roster.runtime_for(fleet.roster.agent("b1")))]
    out = tmp_path / "seq.txt"
    outcomes = []
    for i in range(200):
        [r] = send_mod.send(fleet.tmux, fleet.paths, targets, f"echo {i} >> {out}", timeout=10)
        outcomes.append(r.outcome)
    assert outcomes == [Outcome.ACCEPTED] * 200
    expected = "".join(f"{i}\n" for i in range(200)).encode()
    wait_until(lambda: file_bytes(out) == expected, what="all 200 lines")


@needs_tmux
def test_all_to_eight_agents(fleet_env: dict[str, str], tmp_path: Path) -> None:
    names = [f"a{i}" for i in range(8)]
    agents: list[tuple[str, str, list[str], dict[str, str]]]
    agents = [(n, "shell", [], {"OUT": str(tmp_path / f"{n}.txt")}) for n in names]
    up(fleet_env, roster(agents), names)
    res = send(fleet_env, "--all", "--json", 'printf "%s\\n" "to all: é" > "$OUT"')
    assert res.code == 0, res.out + res.err
    rows = results(res)
    assert [r["agent"] for r in rows] == names
    assert {r["outcome"] for r in rows} == {"accepted"}
    for n in names:
        path = tmp_path / f"{n}.txt"
        wait_until(holds(path, "to all: é\n".encode()), what=f"{n} wrote")


@needs_tmux
def test_two_concurrent_senders_never_interleave(fleet_env: dict[str, str], tmp_path: Path) -> None:
    up(fleet_env, roster([("b1", "shell", [], {})]), ["b1"])
    bodies = {}
    procs = []
    for tag in ("A", "B"):
        bodies[tag] = "".join(f"{tag}{i:04d} {tag * 60}\n" for i in range(60))
        message = f"cat > {tmp_path / tag}.txt <<'MOSAIC_EOF'\n{bodies[tag]}MOSAIC_EOF"
        (tmp_path / f"{tag}.msg").write_text(message)
        with open(tmp_path / f"{tag}.msg", "rb") as stdin:
            procs.append(
                subprocess.Popen(
                    [*MOSAIC, "fleet", "send", "b1", "--json", "-"],
                    env=fleet_env,
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert json.loads(out)["results"][0]["outcome"] == "accepted"
    for tag, body in bodies.items():
        path = tmp_path / f"{tag}.txt"
        data = body.encode()
        wait_until(holds(path, data), what=f"{tag} intact")


# --- demo agent: swallowed Enter, never-submitted text, busy --------------------------------


@needs_tmux
def test_swallowed_enter_is_retried_not_retyped(fleet_env: dict[str, str], tmp_path: Path) -> None:
    rec = tmp_path / "d1.jsonl"
    args = ["--swallow-enter-ms", "400", "--think", "0.2", "--record", str(rec)]
    up(fleet_env, roster([("d1", "demo", args, {})]), ["d1"])
    message = "please fix\tthe bug; $(x) `y` é"
    res = send(fleet_env, "d1", "--json", message)
    assert res.code == 0, res.out + res.err
    [row] = results(res)
    assert row["outcome"] == "accepted" and row["attempts"] >= 2
    # Sent once, accepted once: the retry pressed Enter, it did not type the text again.
    # A second copy would be submitted or left in the input ahead of the next message, so
    # the next message must arrive alone, right after the first.
    wait_until(lambda: recording(rec), what="the recording")
    assert send(fleet_env, "d1", "marker").code == 0
    wait_until(lambda: len(recording(rec)) >= 2, what="the marker recorded")
    assert recording(rec) == [message, "marker"]


@needs_tmux
def test_never_submitted_is_not_accepted_within_timeout(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    rec = tmp_path / "d1.jsonl"
    args = ["--swallow-enter-ms", "600000", "--record", str(rec)]
    up(fleet_env, roster([("d1", "demo", args, {})]), ["d1"])
    message = "this text is never submitted"
    t0 = time.monotonic()
    res = send(fleet_env, "d1", "--json", "--timeout", "3", message)
    elapsed = time.monotonic() - t0
    assert res.code == 3, res.out + res.err
    assert 3.0 <= elapsed < 5.0
    [row] = results(res)
    assert row["outcome"] == "not_accepted" and row["accepted"] is False
    assert 2 <= row["attempts"] <= 5  # retries at most a second apart, none after the timeout
    assert row["seconds"] == pytest.approx(3.0, abs=0.5)
    assert any(message in line for line in row["evidence"])
    assert screen(fleet_env, "d1").count(message) == 1
    assert recording(rec) == []


@needs_tmux
def test_message_to_a_busy_demo_agent_is_queued(fleet_env: dict[str, str], tmp_path: Path) -> None:
    rec = tmp_path / "d1.jsonl"
    up(fleet_env, roster([("d1", "demo", ["--think", "4", "--record", str(rec)], {})]), ["d1"])
    first = send(fleet_env, "d1", "--json", "first task")
    assert first.code == 0 and results(first)[0]["outcome"] == "accepted"
    second = send(fleet_env, "d1", "--json", "second task, sent while busy")
    assert second.code == 0, second.out + second.err
    [row] = results(second)
    assert row["outcome"] == "queued" and row["accepted"] is True
    assert any("thinking" in line for line in row["evidence"])
    wait_until(lambda: recording(rec) == ["first task", "second task, sent while busy"],
               timeout=15, what="both messages, in order")  # fmt: skip


@needs_tmux
def test_multiline_message_is_one_demo_message(fleet_env: dict[str, str], tmp_path: Path) -> None:
    rec = tmp_path / "d1.jsonl"
    up(fleet_env, roster([("d1", "demo", ["--think", "0", "--record", str(rec)], {})]), ["d1"])
    message = "step 1: read\nstep 2:\tthink\n\nstep 3: C-c Enter done"
    res = send(fleet_env, "d1", message)
    assert res.code == 0, res.out + res.err
    wait_until(lambda: recording(rec) == [message], what="one message")


@needs_tmux
def test_nothing_is_typed_into_an_approval_dialog(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    rec = tmp_path / "d1.jsonl"
    args = ["--think", "0", "--approval-every", "1", "--record", str(rec)]
    up(fleet_env, roster([("d1", "demo", args, {})]), ["d1"])
    res = send(fleet_env, "d1", "--json", "run it")
    assert results(res)[0]["outcome"] == "accepted"
    wait_until(lambda: agent(fleet_env, "d1")["activity"] == "awaiting_approval")
    # `y` in the text would answer the dialog if it were typed. The answer comes at once,
    # not after the (long) timeout.
    res = send(fleet_env, "d1", "--json", "--timeout", "60", "yes, and also this")
    assert res.code == 3
    [row] = results(res)
    assert row["outcome"] == "awaiting_approval" and row["attempts"] == 0
    assert row["accepted"] is False and row["seconds"] < 10
    assert any("Allow?" in line for line in row["evidence"])
    assert agent(fleet_env, "d1")["activity"] == "awaiting_approval"
    assert "yes, and also this" not in screen(fleet_env, "d1")
    assert recording(rec) == ["run it"]


@needs_tmux
def test_no_verify_submits_once_and_claims_nothing(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    up(fleet_env, roster([("b1", "shell", [], {})]), ["b1"])
    out = tmp_path / "nv.txt"
    res = send(fleet_env, "b1", "--json", "--no-verify", f"echo nv > {out}")
    assert res.code == 0
    [row] = results(res)
    assert row["outcome"] == "unverified" and row["accepted"] is None and row["attempts"] == 1
    wait_until(lambda: file_bytes(out) == b"nv\n", what="the command ran")


# --- refusals: nothing typed anywhere -------------------------------------------------------


@needs_tmux
def test_stopped_agent_exit_1_and_nothing_typed_anywhere(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    rec = tmp_path / "d1.jsonl"
    body = roster([("b1", "shell", [], {}), ("d1", "demo", ["--record", str(rec)], {})])
    up(fleet_env, body, ["b1", "d1"])
    ok(fleet_env, "stop", "d1")
    out = tmp_path / "never.txt"
    message = f"echo typed > {out}"
    res = send(fleet_env, "b1", "d1", "--json", message)
    assert res.code == 1, res.out + res.err
    rows = {r["agent"]: r for r in results(res)}
    assert rows["d1"]["outcome"] == "not_running" and rows["d1"]["accepted"] is False
    assert rows["b1"]["outcome"] == "skipped" and rows["b1"]["attempts"] == 0
    res = send(fleet_env, "d1", message)
    assert res.code == 1 and "d1: not_running" in res.out
    assert_nothing_typed(fleet_env, tmp_path, ["b1"], out)
    assert recording(rec) == []


@needs_tmux
def test_unknown_agent_exit_2_names_known_and_types_nothing(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    up(fleet_env, roster([("b1", "shell", [], {}), ("b2", "shell", [], {})]), ["b1", "b2"])
    out = tmp_path / "never.txt"
    res = send(fleet_env, "b1", "nosuch", f"echo typed > {out}")
    assert res.code == 2
    assert "nosuch" in res.err and "b1" in res.err and "b2" in res.err
    assert "Traceback" not in res.err and res.out == ""
    assert_nothing_typed(fleet_env, tmp_path, ["b1", "b2"], out)


@needs_tmux
def test_usage_errors_exit_2(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, roster([("b1", "shell", [], {})]))
    for args, stdin in [
        (["b1", ""], None),
        (["b1", "  \n"], None),
        (["b1", "-"], b""),
        (["b1", "-"], b"\xff\xfe bad"),
        (["b1"], None),
        (["--all", "b1", "hi"], None),
        (["--timeout", "0", "b1", "hi"], None),
        (["--timeout", "-1", "b1", "hi"], None),
    ]:
        res = send(fleet_env, *args, input=stdin)
        assert res.code == 2, (args, res.out, res.err)
        assert "Traceback" not in res.err


@needs_tmux
def test_json_shape(fleet_env: dict[str, str], tmp_path: Path) -> None:
    up(fleet_env, roster([("b1", "shell", [], {}), ("b2", "shell", [], {})]), ["b1", "b2"])
    res = send(fleet_env, "b2", "b1", "--json", "true")
    assert res.code == 0 and res.err == ""
    rows = results(res)
    assert [r["agent"] for r in rows] == ["b2", "b1"]
    for row in rows:
        assert set(row) == RESULT_KEYS
        assert row["outcome"] == "accepted" and row["accepted"] is True
        assert isinstance(row["attempts"], int) and row["attempts"] >= 1
        assert isinstance(row["seconds"], float) and 0 < row["seconds"] < 30
        assert isinstance(row["evidence"], list) and row["evidence"]
        assert all(isinstance(line, str) for line in row["evidence"])


def test_split_args_and_message() -> None:
    from mosaic.cli.send_cmd import read_message, split_args

    assert split_args(("a", "b", "a", "msg"), False) == (["a", "b"], "msg")
    assert split_args(("msg",), True) == ([], "msg")
    for args, everyone in [(("msg",), False), ((), True), (("a", "msg"), True)]:
        with pytest.raises(UsageError):
            split_args(args, everyone)
    assert read_message(" x ") == " x "
    with pytest.raises(UsageError):
        read_message("\t \n")


def test_generic_echo_of_a_submitted_multiline_message_is_not_the_input() -> None:
    """The demo echoes a submitted message above its reply and the next prompt: the tail is
    on screen, just not at the cursor (screen.py's generic rule, as send relies on it)."""
    from mosaic.config.runtimes import builtin_runtimes
    from mosaic.screen.classify import Screen, message_in_input

    demo = builtin_runtimes()["demo"]
    message = "step 1: read\nstep 2:\tthink\n\nstep 3: C-c Enter done"
    rows = ["demo> step 1: read", "....> step 2:    think", "....>", "....> step 3: C-c Enter done"]
    typed = Screen.from_capture("\n".join(rows) + "\n")
    assert message_in_input(demo, typed, message)
    sent_rows = [*rows, "reply #1: step 1: read step 2: think step 3: C-c Enter done", "demo>"]
    sent = Screen.from_capture("\n".join(sent_rows) + "\n", cursor_x=6, cursor_y=5)
    check = message_in_input(demo, sent, message)
    assert not check and check.region_found
    wide = Screen.from_capture("$ echo 日本語テキストです done\n")
    assert message_in_input(builtin_runtimes()["shell"], wide, "echo 日本語テキストです done")
    # Text that exactly fills a row leaves the cursor at the start of the next, empty row.
    full = "$ " + "z" * 56 + " end"
    exact = Screen.from_capture(full + "\n\n", cursor_x=0, cursor_y=1, width=len(full))
    assert message_in_input(builtin_runtimes()["shell"], exact, full[2:])


@needs_tmux
def test_back_to_back_sends_wait_for_a_short_command(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """A shell running a short command gets a moment to return to its prompt; a long one
    is `not_running` (the text would go to the command, not the shell)."""
    up(fleet_env, roster([("b1", "shell", [], {})]), ["b1"])
    out = tmp_path / "after.txt"
    first = send(fleet_env, "b1", "--json", "sleep 1")
    assert results(first)[0]["outcome"] == "accepted"
    second = send(fleet_env, "b1", "--json", f"echo after > {out}")
    assert second.code == 0, second.out
    wait_until(holds(out, b"after\n"), what="the second command ran")
    assert send(fleet_env, "b1", "sleep 30").code == 0
    wait_until(
        lambda: "sleep" in tmux(fleet_env, "display", "-p", "-t", "=b1:", "#{pane_current_command}")
    )
    t0 = time.monotonic()
    blocked = send(fleet_env, "b1", "--json", f"echo never > {out}")
    assert blocked.code == 1
    assert results(blocked)[0]["outcome"] == "not_running"
    assert 1.5 < time.monotonic() - t0 < 10
    assert "echo never" not in screen(fleet_env, "b1")
    tmux(fleet_env, "send-keys", "-t", "=b1:", "C-c")
    # Had `echo never` reached bash, it would have run before this later command.
    assert send(fleet_env, "b1", f"echo marker >> {out}").code == 0
    wait_until(lambda: file_bytes(out) != b"after\n", what="the marker")
    assert out.read_bytes() == b"after\nmarker\n"
