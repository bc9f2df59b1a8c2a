"""The outbox end to end, as a user drives it: `send --queue`, `outbox`, real tmux, real
demo agents whose `--record` file is the ground truth of what each one received, and the
real watcher delivering."""

from __future__ import annotations

import json
from pathlib import Path

from fleetkit import mosaic, ok, tmux, write_roster
from helpers import wait_until
from outboxkit import box, demo_roster, message, queue, recorded, up, wait_state
from watchkit import events, last_seq, wait_event


def test_queued_for_a_stopped_agent_then_delivered_once_it_starts(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": []}), ["d1"], start=False)
    # Never started, no database yet: it is stored all the same, and returns at once.
    res = ok(env, "send", "--queue", "d1", "first, while stopped")
    assert res.out == "d1: queued #1\n"
    [row] = box(env)
    assert (row["id"], row["agent"], row["state"], row["attempts"]) == (1, "d1", "queued", 0)
    assert row["delivered_at"] is None and row["first_line"] == "first, while stopped"
    assert "no messages waiting" not in ok(env, "outbox").out
    ok(env, "start")
    done = wait_state(env, 1, "delivered")
    assert done["attempts"] == 1 and done["delivered_at"] >= done["queued_at"]
    assert wait_event(env, "delivered", "d1")["id"] == 1
    # A later direct send arrives after it, and nothing else came in between or since.
    ok(env, "send", "d1", "marker")
    assert recorded(tmp_path, "d1") == ["first, while stopped", "marker"]
    assert box(env) == [] and ok(env, "outbox").out == "no messages waiting\n"


def test_several_for_a_busy_agent_arrive_in_order_one_per_turn(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": ["--think", "1.5"]}), ["d1"])
    mark = last_seq(env)
    ok(env, "send", "d1", "the first turn")
    ids = [queue(env, "d1", f"queued number {i}")[0] for i in range(1, 4)]
    for ident in ids:
        wait_state(env, ident, "delivered", timeout=40)
    queued = [f"queued number {i}" for i in (1, 2, 3)]
    assert recorded(tmp_path, "d1") == ["the first turn", *queued]
    # Each one waited for the agent's turn to end: an `idle` before every `delivered`.
    seen = [e for e in events(env, "d1", "--since", str(mark))
            if e["type"] in ("busy", "idle", "delivered")]  # fmt: skip
    delivered = [e["id"] for e in seen if e["type"] == "delivered"]
    assert delivered == ids
    previous = 0
    for e in seen:
        if e["type"] == "delivered":
            assert any(x["type"] == "idle" and previous < x["seq"] < e["seq"] for x in seen), seen
            previous = e["seq"]


def test_wait_until_delivered_or_the_timeout(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": []}), ["d1"])
    res = mosaic(env, "send", "--queue", "--wait", "--timeout", "30", "d1", "wait for me")
    assert (res.code, res.out) == (0, "d1: delivered #1 (1 attempt)\n"), res.err
    assert recorded(tmp_path, "d1") == ["wait for me"]

    ok(env, "stop", "d1")
    res = mosaic(env, "send", "--queue", "--wait", "--timeout", "1", "--json", "d1", "later")
    assert res.code == 3
    [row] = json.loads(res.out)["messages"]
    assert (row["id"], row["state"]) == (2, "queued")
    res = mosaic(env, "send", "--queue", "--wait", "--timeout", "0.5", "d1", "later too")
    assert res.code == 3
    assert res.out == "d1: queued #3 (not delivered within 0.5s; it stays queued)\n"
    assert [m["id"] for m in box(env)] == [2, 3]
    ok(env, "start", "d1")
    wait_state(env, 3, "delivered")
    assert recorded(tmp_path, "d1") == ["wait for me", "later", "later too"]


def test_cancel_keeps_a_message_from_being_delivered(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": []}), ["d1"], start=False)
    first, second = queue(env, "d1", "cancel me"), queue(env, "d1", "keep me")
    res = ok(env, "outbox", "cancel", str(first[0]))
    assert res.out == f"d1: cancelled #{first[0]}\n"
    again = mosaic(env, "outbox", "cancel", str(first[0]), str(second[0]))
    assert again.code == 1
    assert again.err == (f"message {first[0]} is cancelled; only queued or failed messages "
                         "can be cancelled\n")  # fmt: skip
    assert message(env, second[0])["state"] == "cancelled"  # the valid one was acted on
    ok(env, "send", "--queue", "d1", "keep me too")
    unknown = mosaic(env, "outbox", "cancel", "3", "999")
    assert (unknown.code, unknown.err) == (2, "no outbox message with id 999\n")
    assert message(env, 3)["state"] == "queued"  # a usage error changes nothing
    assert mosaic(env, "outbox", "cancel").code == 2
    assert mosaic(env, "outbox", "retry", "x1").code == 2
    ok(env, "start")
    wait_state(env, 3, "delivered")
    assert recorded(tmp_path, "d1") == ["keep me too"]
    listed = box(env, "--all")
    assert [(m["id"], m["state"]) for m in listed] == [
        (1, "cancelled"), (2, "cancelled"), (3, "delivered")]  # fmt: skip
    assert listed[0]["reason"] == "cancelled by the operator"


def test_ttl_expires_an_undelivered_message(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": []}), ["d1"])
    ok(env, "stop", "d1")
    for bad in ("0", "soon", "-1s", "10x"):
        res = mosaic(env, "send", "--queue", "--ttl", bad, "d1", "never stored")
        assert res.code == 2, (bad, res.out, res.err)
    assert box(env, "--all") == []
    mark = last_seq(env)
    [ident] = queue(env, "--ttl", "1s", "d1", "only for a second")
    [keep] = queue(env, "--ttl", "10m", "d1", "for ten minutes")
    assert message(env, ident)["expires_at"] is not None
    gone = wait_state(env, ident, "expired", timeout=10)
    assert gone["reason"] == "not delivered within its ttl"
    failed = wait_event(env, "delivery_failed", "d1", after=mark)
    assert (failed["id"], failed["reason"]) == (ident, "expired")
    ok(env, "start", "d1")
    wait_state(env, keep, "delivered")
    assert recorded(tmp_path, "d1") == ["for ten minutes"]


def test_left_the_roster_fails_them_and_retry_requeues(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    both = demo_roster(tmp_path, {"d1": [], "d2": []})
    up(env, both, ["d1", "d2"])
    ok(env, "stop", "d2")
    mark = last_seq(env)
    ids = queue(env, "d2", "for d2, who is leaving") + queue(env, "d2", "and a second one")
    write_roster(env, demo_roster(tmp_path, {"d1": []}))
    ok(env, "apply")
    for ident in ids:
        m = message(env, ident)
        assert (m["state"], m["reason"]) == ("failed", "the agent left the roster")
    failed = events(env, "--since", str(mark), "--type", "delivery_failed")
    assert [(e["agent"], e["id"], e["reason"]) for e in failed] == [
        ("d2", i, "the agent left the roster") for i in ids]  # fmt: skip
    assert mosaic(env, "send", "--queue", "d2", "x").code == 2  # no longer an agent

    write_roster(env, both)
    ok(env, "apply")
    res = ok(env, "outbox", "retry", str(ids[0]))
    assert res.out == f"d2: queued #{ids[0]}\n"
    wait_state(env, ids[0], "delivered")
    assert recorded(tmp_path, "d2") == ["for d2, who is leaving"]
    assert message(env, ids[1])["state"] == "failed"


def test_not_accepted_is_retried_by_submit_only_then_fails(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """An agent that swallows every Enter: two attempts (the second presses only the submit
    key: the text is never typed twice), then `failed`; once the agent is fixed, `retry`
    delivers it once."""
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": ["--swallow-enter-ms", "600000"]}), ["d1"])
    mark = last_seq(env)
    text = "swallowed text 7Q"
    [ident] = queue(env, "--max-attempts", "2", "d1", text)
    second = wait_until(lambda: (m := message(env, ident))["attempts"] == 2 and m, timeout=40,
                        what="the second attempt")  # fmt: skip
    assert second["state"] in ("delivering", "failed")
    failed = wait_state(env, ident, "failed", timeout=40)
    assert failed["reason"].startswith("not accepted after 2 attempts")
    assert wait_event(env, "delivery_failed", "d1", after=mark)["id"] == ident
    screen = tmux(env, "capture-pane", "-p", "-t", "d1")
    assert screen.count("7Q") == 1 and f"demo> {text}" in screen
    assert recorded(tmp_path, "d1") == []

    write_roster(env, demo_roster(tmp_path, {"d1": []}))
    ok(env, "apply")  # restarts d1 without the fault: a new process, an empty input
    ok(env, "outbox", "retry", str(ident))
    done = wait_state(env, ident, "delivered")
    assert done["attempts"] == 1
    assert recorded(tmp_path, "d1") == [text]


def test_usage_errors_store_nothing(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": []}), ["d1"], start=False)
    for args in (
        ["--wait", "d1", "x"],
        ["--ttl", "1m", "d1", "x"],
        ["--max-attempts", "2", "d1", "x"],
        ["--queue", "--no-verify", "d1", "x"],
        ["--queue", "--max-attempts", "0", "d1", "x"],
        ["--queue", "nosuch", "x"],
        ["--queue", "d1", "   "],
        ["--queue", "d1"],
    ):
        res = mosaic(env, "send", *args)
        assert res.code == 2 and "Traceback" not in res.err, (args, res.err)
    res = mosaic(env, "send", "--queue", "d1", "-", input="  \n")
    assert (res.code, res.err) == (2, "the message is empty\n")
    assert mosaic(env, "outbox", "nosuch").code == 2
    assert ok(env, "outbox", "--all").out == "no messages\n"


def test_hostile_text_is_typed_as_text_and_listed_harmlessly(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """Shell syntax, tmux key names, an option-like start and terminal escapes: each reaches
    the agent verbatim and nothing else, and the listing never writes the escape."""
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": []}), ["d1"], start=False)
    pwned = tmp_path / "pwned"
    texts = [
        f"$(touch {pwned}); `touch {pwned}` && echo done",
        "Enter C-c \"quoted\" 'single' #{pane_id} %1",
        "-t d1 --all",
        "bell \x07 and title \x1b]0;owned\x07 end",
    ]
    ids = [queue(env, "d1", "--", t)[0] for t in texts]
    listing = ok(env, "outbox").out
    assert "\x1b" not in listing and "\x07" not in listing and "title ?]0;owned? end" in listing
    ok(env, "start")
    for ident in ids:
        wait_state(env, ident, "delivered")
    assert recorded(tmp_path, "d1") == texts
    assert not pwned.exists()


def test_nothing_is_typed_into_an_approval_dialog(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """A queued message waits while the agent asks the operator; the demo's dialog takes an
    `n` as "deny", so a message with one typed into it would deny the request."""
    env = fleet_env
    up(env, demo_roster(tmp_path, {"d1": ["--think", "0", "--approval-every", "1"]}), ["d1"])
    mark = last_seq(env)
    ok(env, "send", "d1", "needs a tool")
    wait_event(env, "awaiting_approval", "d1", after=mark)
    [ident] = queue(env, "d1", "then run the next one")
    # The marker: ten more watcher ticks (each touches the heartbeat) with it queued.
    beat = Path(env["MOSAIC_HOME"]) / "fleet" / "run" / "watcher.beat"
    ticks: set[int] = set()

    def ten_ticks() -> bool:
        ticks.add(beat.stat().st_mtime_ns)
        return len(ticks) >= 10

    wait_until(ten_ticks, interval=0.05, what="ten watcher ticks")
    assert message(env, ident)["state"] == "queued" and message(env, ident)["attempts"] == 0
    assert "Allow? (y/n)" in tmux(env, "capture-pane", "-p", "-t", "d1")
    ok(env, "approve", "d1")
    wait_state(env, ident, "delivered")
    assert recorded(tmp_path, "d1") == ["needs a tool", "then run the next one"]
    assert "reply #1: needs a tool" in tmux(env, "capture-pane", "-p", "-t", "d1")

