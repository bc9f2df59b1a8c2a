"""The outbox across machines: a message for a remote agent is stored on its host, whose
own watcher delivers it exactly once (the demo agent's recording is the ground truth);
`outbox` merges every machine's messages with their host; `cancel`/`retry` route each
`HOST:N` id to its machine; `--wait` follows messages on several machines; a host that
cannot be reached is named while the rest works."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetkit import mosaic, ok, write_roster
from helpers import wait_until
from hostlab import Lab, all_running, open_lab, recording
from mosaic.config.names import LOCAL_HOST
from mosaic.errors import UsageError
from mosaic.hosts.outboxing import Ref, ordered, parse_ref, refusals, tagged


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


def _box(env: dict[str, str], *args: str, code: int = 0) -> list[dict[str, Any]]:
    res = mosaic(env, "outbox", "--json", *args)
    assert res.code == code and "Traceback" not in res.err, res.out + res.err
    found: list[dict[str, Any]] = json.loads(res.out)["messages"]
    return found


def _state(env: dict[str, str], ident: int | str) -> str:
    return str(next(m["state"] for m in _box(env, "--all") if m["id"] == ident))


# --- ids and merging (pure) ----------------------------------------------------------------


def test_ids_name_their_machine() -> None:
    machines = [LOCAL_HOST, "h1", "gpu-2.lab"]
    assert parse_ref("17", machines) == Ref(LOCAL_HOST, 17)
    assert parse_ref("local:17", machines) == Ref(LOCAL_HOST, 17)
    assert parse_ref("gpu-2.lab:3", machines) == Ref("gpu-2.lab", 3)
    assert str(Ref("h1", 3)) == "h1:3" and str(Ref(LOCAL_HOST, 3)) == "3"
    assert Ref("h1", 3).value == "h1:3" and Ref(LOCAL_HOST, 3).value == 3
    for bad in ("h1:x", "h1:", ":3", "x", "-3", "h1:3:4", "h1:٣", ""):
        with pytest.raises(UsageError):
            parse_ref(bad, machines)
    with pytest.raises(UsageError, match=r"unknown host 'h9'; known: local, h1, gpu-2\.lab"):
        parse_ref("h9:3", machines)


def test_rows_merge_oldest_first_with_their_host() -> None:
    row = {"agent": "a", "state": "queued", "queued_at": "2026-05-01T09:00:00.000Z"}
    later = {**row, "queued_at": "2026-05-01T09:00:01.000Z"}
    rows = [tagged("h1", {"id": 2, **later}), tagged("h1", {"id": 1, **row}),
            tagged(LOCAL_HOST, {"id": 9, **row})]  # fmt: skip
    assert [(r["id"], r["host"]) for r in ordered(rows, [LOCAL_HOST, "h1"])] == [
        (9, LOCAL_HOST), ("h1:1", "h1"), ("h1:2", "h1")
    ]  # fmt: skip
    assert list(rows[0])[:2] == ["id", "host"]
    # A host's refusals are read by id and name the message by its namespaced id.
    err = "message 4 is delivered; only queued or failed messages can be cancelled\n"
    assert refusals("h1", err) == {
        "h1:4": "message h1:4 is delivered; only queued or failed messages can be cancelled"
    }


def test_malformed_and_unknown_ids_are_usage_errors(fleet_env: dict[str, str]) -> None:
    """Refused before any machine is asked (the host is not even reachable)."""
    write_roster(fleet_env, "version: 1\nhosts:\n  h1: {ssh: 'dev@192.0.2.1'}\nagents:\n"
                 "  - {name: r1, runtime: demo, host: h1}\n")  # fmt: skip
    for action, ident, why in [
        ("cancel", "h9:3", "unknown host 'h9'; known: local, h1"),
        ("retry", "h1:x", "not a message id: 'h1:x'"),
        ("cancel", "3;rm", "not a message id"),
    ]:
        res = mosaic(fleet_env, "outbox", action, "2", ident)
        assert res.code == 2 and why in res.err and res.out == "", res.err
        assert "Traceback" not in res.err and "unreachable" not in res.err


# --- across machines (the lab) ---------------------------------------------------------------


def test_queue_list_cancel_retry_and_wait_across_machines(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("loc", None), ("r1", "h1")]))
    r1_rec, loc_rec = tmp_path / "r1.jsonl", tmp_path / "loc.jsonl"
    pwned = tmp_path / "pwned"
    first = f"first; $(touch {pwned}) 'q'"

    # Nothing started anywhere (h1 has no roster yet): queued on each agent's machine.
    res = ok(env, "send", "--queue", "r1", "loc", first)
    assert res.out == "r1: queued #h1:1\nloc: queued #1\n"
    stored = json.loads(ok(env, "send", "--queue", "--json", "r1", "to cancel").out)
    assert [(m["id"], m["host"], m["agent"]) for m in stored["messages"]] == [
        ("h1:2", "h1", "r1")
    ]  # fmt: skip
    # The message stayed off every command line: h1's own outbox has it as typed.
    there = h1.run("mosaic", "fleet", "outbox", "--json")
    assert [m["first_line"] for m in json.loads(there.stdout)["messages"]] == [
        first, "to cancel"
    ]  # fmt: skip

    listed = _box(env)
    assert sorted((str(m["id"]), m["host"], m["agent"], m["state"]) for m in listed) == [
        ("1", "local", "loc", "queued"), ("h1:1", "h1", "r1", "queued"),
        ("h1:2", "h1", "r1", "queued"),
    ]  # fmt: skip
    assert [m["queued_at"] for m in listed] == sorted(m["queued_at"] for m in listed)
    assert [m["id"] for m in _box(env, "r1")] == ["h1:1", "h1:2"]
    table = ok(env, "outbox").out.splitlines()
    assert table[0].split()[:3] == ["ID", "HOST", "AGENT"]
    assert any(line.split()[:3] == ["h1:2", "h1", "r1"] for line in table)

    res = ok(env, "outbox", "cancel", "h1:2")
    assert res.out == "r1: cancelled #h1:2\n"
    res = mosaic(env, "outbox", "cancel", "h1:2")
    assert res.code == 1 and res.out == ""
    assert "message h1:2 is cancelled; only queued or failed" in res.err
    res = ok(env, "outbox", "retry", "h1:1", "1")  # queued: tried without waiting
    assert res.out == "r1: queued #h1:1\nloc: queued #1\n"  # in the order given
    res = mosaic(env, "outbox", "cancel", "h1:99")
    assert res.code == 2 and "host h1: no outbox message with id 99" in res.err

    # Started: each machine's watcher delivers its own, exactly once.
    ok(env, "start")
    wait_until(lambda: all_running(env, ["loc", "r1"]), timeout=40, what="running")
    wait_until(lambda: _state(env, "h1:1") == "delivered", timeout=30, what="h1:1 delivered")
    wait_until(lambda: _state(env, 1) == "delivered", timeout=30, what="1 delivered")
    assert _state(env, "h1:2") == "cancelled"
    assert _box(env) == []

    # --wait follows messages on both machines; the later marker proves nothing came twice.
    res = ok(env, "send", "--queue", "--wait", "--timeout", "30", "loc", "r1", "second")
    assert res.out == "loc: delivered #2 (1 attempt)\nr1: delivered #h1:3 (1 attempt)\n"
    assert recording(r1_rec) == [first, "second"]
    assert recording(loc_rec) == [first, "second"]
    assert not pwned.exists()

    # Stopped on one machine: not delivered in time there (exit 3), delivered on the other.
    ok(env, "stop", "r1")
    res = mosaic(env, "send", "--queue", "--wait", "--json", "--timeout", "2", "r1", "loc", "3rd")
    assert res.code == 3, res.out + res.err
    doc = json.loads(res.out)["messages"]
    assert [(m["id"], m["state"]) for m in doc] == [("h1:4", "queued"), (3, "delivered")]

    assert _state(env, "h1:4") == "queued"

    # The stopped agent started again: its host's watcher delivers it, once (the marker
    # queued after it arrives after it).
    ok(env, "start", "r1")
    res = ok(env, "send", "--queue", "--wait", "--timeout", "40", "r1", "last")
    assert res.out == "r1: delivered #h1:5 (1 attempt)\n"
    assert _state(env, "h1:4") == "delivered"
    assert recording(r1_rec) == [first, "second", "3rd", "last"]
    ok(env, "stop")


def test_an_unreachable_host_is_named_while_this_machines_part_works(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("loc", None), ("r1", "h1")]))
    assert ok(env, "send", "--queue", "r1", "before").out == "r1: queued #h1:1\n"
    h1.kill_sshd()

    res = mosaic(env, "send", "--queue", "loc", "r1", "while h1 is away")
    assert res.code == 1 and res.out == "loc: queued #1\n", res.out + res.err
    assert "host h1 unreachable" in res.err and "Traceback" not in res.err
    res = mosaic(env, "send", "--queue", "--wait", "--timeout", "1", "r1", "wait for it")
    assert res.code == 1 and res.out == "" and "host h1 unreachable" in res.err
    res = mosaic(env, "outbox", "--json")
    assert res.code == 1 and "host h1 unreachable" in res.err
    assert [m["id"] for m in json.loads(res.out)["messages"]] == [1]
    res = mosaic(env, "outbox")
    assert res.code == 1 and res.out.splitlines()[1].split()[:3] == ["1", "local", "loc"]
    res = mosaic(env, "outbox", "r1")
    assert res.code == 1 and res.out == "" and "host h1 unreachable" in res.err
    res = mosaic(env, "outbox", "cancel", "h1:1", "1")
    assert res.code == 1 and res.out == "loc: cancelled #1\n" and "host h1 unreachable" in res.err

    # Back: h1's message was never touched; only this machine's was cancelled.
    h1.start_sshd()
    assert [(m["id"], m["state"]) for m in _box(env, "--all")] == [
        ("h1:1", "queued"), (1, "cancelled")
    ]  # fmt: skip


def test_the_listing_asks_each_host_once_starting_before_click_loads(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """`outbox` starts each host's call ahead of its own start-up (hosts.prefetch), and
    then takes it over rather than asking again."""
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1")]))
    ok(env, "send", "--queue", "r1", "hello")
    for args in (["outbox", "--json"], ["outbox"], ["outbox", "--all", "--json"]):
        before = h1.sessions()
        assert "r1" in ok(env, *args).out
        assert h1.sessions() == before + 1, args
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mosaic", "fleet",
                               *args], env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert proc.returncode == 0 and "r1" in proc.stdout, proc.stderr[-500:]
        imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()]
        assert imported.index("mosaic.hosts.ssh") < imported.index("click"), args
    # AGENT asks only its machine, on the normal path: still one call.
    before = h1.sessions()
    assert ok(env, "outbox", "r1").out.count("hello") == 1
    assert h1.sessions() == before + 1


def test_a_hosts_answer_is_shown_harmlessly(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """What a host answers is text from outside: escape sequences in any field reach the
    operator's terminal as `?`; a row without a numeric id is the host's error (exit 1)."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    esc = "\\u001b]0;pwned\\u0007\\u001b[2J"
    row = (f'{{"id": 1, "agent": "r1{esc}", "state": "queued{esc}", "attempts": 0, '
           f'"queued_at": "2026-05-01T09:00:00.000Z{esc}", "delivered_at": null, '
           f'"expires_at": null, "first_line": "hi{esc}", "reason": "why{esc}"}}')  # fmt: skip
    (fake / "mosaic").write_text(f"#!/bin/sh\ncat <<'EOF'\n{{\"messages\": [{row}]}}\nEOF\n")
    (fake / "mosaic").chmod(0o755)
    lab.add("h1", path_first=fake)
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1")]))
    res = ok(env, "outbox")
    assert "\x1b" not in res.out and "\x07" not in res.out and "?]0;pwned" in res.out
    assert json.loads(ok(env, "outbox", "--json").out)["messages"][0]["id"] == "h1:1"
    (fake / "mosaic").write_text("#!/bin/sh\necho '{\"messages\": [{\"id\": \"1;x\"}]}'\n")
    res = mosaic(env, "outbox")
    assert res.code == 1 and "host h1: an outbox row without a numeric id" in res.err
    assert "Traceback" not in res.err
