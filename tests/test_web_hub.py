"""The dashboard's live feed (mosaic/web/hub.py) driven tick by tick against a real fleet:
what it sends, to whom, and how it keeps the agent list current without a watcher."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fleetkit import agent, ok, status, tmux, write_roster
from helpers import wait_until
from mosaic.config.paths import resolve
from mosaic.web import hub
from mosaic.web.hub import Message, _Feed

STOP_WATCHER = (
    "from mosaic.config.paths import resolve\n"
    "from mosaic.fleet import open_fleet\n"
    "from mosaic.supervise.tmux import watcher\n"
    "print(watcher.stop(open_fleet(resolve())))\n"
)


@pytest.fixture
def feed(fleet_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> _Feed:
    for key in ("MOSAIC_HOME", "TMUX_TMPDIR", "MOSAIC_TMUX_SOCKET", "MOSAIC_FLEET_SUPERVISOR",
                "HOME"):  # fmt: skip
        monkeypatch.setenv(key, fleet_env[key])
    monkeypatch.delenv("TMUX", raising=False)
    messages: list[Message] = []
    f = _Feed(resolve(env=fleet_env), messages.append)
    f.messages = messages  # type: ignore[attr-defined]
    return f


def sent(feed: _Feed) -> list[Message]:
    return feed.messages  # type: ignore[attr-defined, no-any-return]


def statuses(feed: _Feed) -> list[dict[str, object]]:
    return [json.loads(m.data) for m in sent(feed) if m.kind == "status"]


def activity(doc: dict[str, object], name: str) -> object:
    rows = doc["agents"]
    assert isinstance(rows, list)
    return next(r["activity"] for r in rows if r["name"] == name)


def test_without_a_watcher_the_feed_reads_activity_itself(
    fleet_env: dict[str, str], feed: _Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = fleet_env
    write_roster(env, 'version: 1\nagents:\n  - name: d1\n    runtime: demo\n'
                      '    args: ["--think", "600"]\n')  # fmt: skip
    ok(env, "start")
    wait_until(lambda: agent(env, "d1")["activity"] == "idle", what="d1 idle")
    out = subprocess.run([sys.executable, "-c", STOP_WATCHER], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout  # fmt: skip
    assert "watcher: stopped" in out
    assert status(env)["watcher"]["state"] == "stopped"
    # No periodic refresh during the test: a new document can only come from what the
    # feed itself saw on the screen.
    monkeypatch.setattr(hub, "STATUS_EVERY_S", 3600.0)
    feed.start()
    try:
        feed.tick(frozenset(), set())
        assert [activity(d, "d1") for d in statuses(feed)] == ["idle"]
        ok(env, "send", "d1", "think for ten minutes")

        def busy() -> bool:
            feed.tick(frozenset(), set())
            return any(activity(d, "d1") == "busy" for d in statuses(feed))

        wait_until(busy, what="a status document with d1 busy")
        # Nobody shows d1's screen: none was sent, though it was captured and read.
        assert [m for m in sent(feed) if m.kind == "screen"] == []
    finally:
        feed.close()


def test_screens_go_only_where_asked_and_a_dead_pane_shows_what_tmux_left(
    fleet_env: dict[str, str], feed: _Feed
) -> None:
    env = fleet_env
    crash = '["bash", "-c", "sleep 1.5; exit 7"]'
    write_roster(env, "version: 1\nagents:\n  - name: sh1\n    runtime: shell\n"
                      "  - name: sh2\n    runtime: shell\n"
                      "  - name: c1\n    runtime: once\n    restart: never\nruntimes:\n"
                      f"  once:\n    command: {crash}\n    processes: [bash]\n")  # fmt: skip
    ok(env, "start")
    feed.start()
    try:
        feed.tick(frozenset({"sh1"}), {"sh1"})
        first = [m for m in sent(feed) if m.kind == "screen"]
        assert [m.agent for m in first] == ["sh1"]  # forced: sent though nothing changed
        tmux(env, "send-keys", "-t", "=sh2:", "-l", "echo only-sh2-changed")
        tmux(env, "send-keys", "-t", "=sh2:", "Enter")
        tmux(env, "send-keys", "-t", "=sh1:", "-l", "echo sh1-changed")
        tmux(env, "send-keys", "-t", "=sh1:", "Enter")

        def sh1_changed() -> bool:
            feed.tick(frozenset({"sh1"}), set())
            return any("sh1-changed" in json.loads(m.data)["text"]
                       for m in sent(feed) if m.kind == "screen")  # fmt: skip

        wait_until(sh1_changed, what="sh1's new screen")
        assert {m.agent for m in sent(feed) if m.kind == "screen"} == {"sh1"}

        wait_until(lambda: agent(env, "c1")["state"] == "stopped", what="c1 exited")
        feed.tick(frozenset({"sh1", "c1"}), {"c1"})
        dead = [json.loads(m.data) for m in sent(feed) if m.kind == "screen" and m.agent == "c1"]
        assert dead and dead[-1]["dead"] is True
        assert "Pane is dead (status 7" in dead[-1]["text"]  # what tmux leaves on it
    finally:
        feed.close()


def test_events_reach_the_feed_in_order_once(fleet_env: dict[str, str], feed: _Feed) -> None:
    env = fleet_env
    write_roster(env, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n")
    ok(env, "start")
    wait_until(lambda: agent(env, "d1")["activity"] == "idle", what="d1 idle")
    top = feed.start()
    ok(env, "send", "d1", "one")
    ok(env, "send", "d1", "two")

    def both() -> list[int] | None:
        feed.tick(frozenset(), set())
        seqs = [m.seq for m in sent(feed) if m.kind == "event"]
        lines = [json.loads(m.data) for m in sent(feed) if m.kind == "event"]
        n = sum(1 for e in lines if e["type"] == "sent")
        return [s for s in seqs if s is not None] if n >= 2 else None

    try:
        seqs = wait_until(both, what="both sent events")
        assert seqs == sorted(set(seqs)) and seqs[0] > top
        every = [json.loads(ln) for ln in ok(env, "events", "--json", "--since", str(top)).out
                 .splitlines()]  # fmt: skip
        assert [e["seq"] for e in every][: len(seqs)] == seqs
    finally:
        feed.close()
