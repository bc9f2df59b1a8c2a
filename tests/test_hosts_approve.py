"""`approve` of an agent on another machine runs there: the same outcomes, keys, evidence
and exit codes as on a local agent, the JSON naming its host; nothing is typed when no
dialog waits, and an unreachable host is named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetkit import mosaic, ok, write_roster
from helpers import wait_until
from hostlab import Lab, all_running, open_lab, recording, rows


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


def _approve(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    res = mosaic(env, "approve", *args, "--json")
    assert "Traceback" not in res.err
    return res.code, json.loads(res.out)


def _screen(env: dict[str, str], name: str) -> str:
    return ok(env, "capture", name).out


def test_approve_and_deny_a_remote_agents_dialog(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    rec = tmp_path / "r1.jsonl"
    args = json.dumps(["--think", "0", "--approval-every", "1", "--record", str(rec)])
    write_roster(env, "version: 1\n" + lab.hosts_yaml("h1") + "agents:\n"
                 "  - {name: loc, runtime: demo, args: [--think, '0']}\n"
                 f"  - {{name: r1, runtime: demo, host: h1, args: {args}}}\n")  # fmt: skip
    ok(env, "start")
    wait_until(lambda: all_running(env, ["loc", "r1"]), timeout=40, what="running")

    def dialogs() -> list[dict[str, Any]]:
        out = ok(env, "events", "r1", "--json", "--type", "awaiting_approval").out
        return [json.loads(line) for line in out.splitlines()]

    def waiting(events: int = 0) -> bool:
        # The dialog on screen and, once it has held past the debounce, h1's watcher's
        # event for it (approving sooner would leave no event to merge).
        shown = rows(env)["r1"]["activity"] == "awaiting_approval"
        return bool(shown and (events == 0 or len(dialogs()) >= events))

    # Nothing waits: nothing is typed there, exit 1, as locally.
    code, doc = _approve(env, "r1")
    assert code == 1 and doc["outcome"] == "not_awaiting" and doc["keys"] == []
    assert doc["host"] == "h1" and doc["ok"] is False

    ok(env, "send", "r1", "rm the build dir")
    wait_until(lambda: waiting(1), timeout=30, what="r1's dialog")
    code, doc = _approve(env, "r1")
    assert code == 0, doc
    assert {k: doc[k] for k in ("agent", "outcome", "ok", "keys", "host")} == {
        "agent": "r1", "outcome": "approved", "ok": True, "keys": ["y"], "host": "h1"
    }  # fmt: skip
    assert set(doc) == {"agent", "outcome", "ok", "keys", "seconds", "evidence", "host"}
    wait_until(lambda: "allowed (y)" in _screen(env, "r1"), timeout=15, what="allowed")
    assert "reply #1: rm the build dir" in _screen(env, "r1")

    ok(env, "send", "r1", "and the cache")
    wait_until(lambda: waiting(2), timeout=30, what="r1's second dialog")
    res = mosaic(env, "approve", "r1", "--deny")
    assert res.code == 0 and res.out.startswith("r1: denied (typed n, "), res.out + res.err
    wait_until(lambda: "reply #2: denied" in _screen(env, "r1"), timeout=15, what="denied")
    assert recording(rec) == ["rm the build dir", "and the cache"]
    # The dialogs were events on h1, merged here with its name.
    found = dialogs()
    assert len(found) == 2 and {e["host"] for e in found} == {"h1"}
    # A local agent of the same fleet: its document names this machine.
    code, doc = _approve(env, "loc")
    assert code == 1 and doc["host"] == "local" and doc["outcome"] == "not_awaiting"

    # The agent's host unreachable: named, exit 1, nothing typed anywhere.
    ok(env, "send", "r1", "third")
    wait_until(waiting, timeout=30, what="r1's third dialog")
    h1.kill_sshd()
    res = mosaic(env, "approve", "r1")
    assert res.code == 1 and "host h1 unreachable" in res.err and res.out == ""
    h1.start_sshd()
    assert rows(env)["r1"]["activity"] == "awaiting_approval"  # still waiting: nothing typed
    code, doc = _approve(env, "r1")
    assert code == 0 and doc["outcome"] == "approved"
    ok(env, "stop")
