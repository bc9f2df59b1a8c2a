"""Notifications: roster checks, and real deliveries from a running watcher to a command
(stdin JSON + env), a local HTTP server (stdlib http.server), a hanging command and a
failing webhook; once per occurrence across a watcher restart."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fleetkit import agent, mosaic, ok, write_roster
from helpers import wait_until
from mosaic.config.eventtypes import EventType
from mosaic.store.events import Event
from mosaic.watch import notify
from watchkit import events, wait_event, watcher_running

NOTE = """\
import json, os, sys
event = json.loads(sys.stdin.read())
keys = ("MOSAIC_EVENT_TYPE", "MOSAIC_EVENT_AGENT", "MOSAIC_EVENT_SEQ")
env = {k: os.environ.get(k) for k in keys}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"event": event, "env": env}) + "\\n")
"""


class Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server: Any = self.server
        server.got.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(server.status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(status: int) -> Any:
    """A loopback HTTP server answering every POST with `status`, recording each request."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.got = []
    server.status = status
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def hooks() -> Iterator[tuple[Any, Any]]:
    good = serve(200)
    bad = serve(500)
    yield good, bad
    for s in (good, bad):
        s.shutdown()
        s.server_close()


def test_bad_notify_entries_are_roster_errors(fleet_env: dict[str, str]) -> None:
    path = write_roster(fleet_env, """\
version: 1
agents:
  - name: d1
    runtime: demo
notify:
  - on: [idel]
    command: ["true"]
  - on: [idle]
    agents: [nobody]
    webhook: "ftp://example/hook"
  - on: [idle]
    command: "notify-send hi"
    desktop: true
  - agents: [d1]
    desktop: false
  - {on: [busy]}
""")  # fmt: skip
    res = mosaic(fleet_env, "validate")
    assert res.code == 2 and "Traceback" not in res.err
    lines = res.err.strip().splitlines()
    assert all(line.startswith(f"{path}:") for line in lines), lines
    expect = [
        ":6:10: unknown event type 'idel' in notify on (did you mean 'idle'?)",
        ":9:14: unknown agent 'nobody' in notify agents",
        ":10:14: webhook must be an http:// or https:// URL",
        ":11:5: notify entry needs exactly one of command, webhook, desktop (got command, desktop)",
        ":12:14: notify command must be a list of strings",
        ":14:5: notify entry is missing required key 'on'",
        ":15:14: desktop must be true",
        ":16:5: notify entry needs exactly one of command, webhook, desktop (got none)",
    ]
    for want in expect:
        assert any(want in line for line in lines), (want, lines)


def test_command_and_webhook_get_each_event_once(
    fleet_env: dict[str, str], tmp_path: Path, hooks: tuple[Any, Any]
) -> None:
    good, bad = hooks
    env = fleet_env
    script = tmp_path / "note.py"
    script.write_text(NOTE)
    notes = tmp_path / "notes.jsonl"
    write_roster(env, f"""\
version: 1
agents:
  - name: d1
    runtime: demo
    args: ["--think", "2.5"]
notify:
  - on: [busy, idle]
    agents: [d1]
    command: [{json.dumps(sys.executable)}, {json.dumps(str(script))}, {json.dumps(str(notes))}]
  - on: [busy]
    command: ["sleep", "60"]
  - on: [idle]
    webhook: "http://127.0.0.1:{good.server_address[1]}/hook?x=1"
  - on: [idle]
    webhook: "http://127.0.0.1:{bad.server_address[1]}/broken"
""")  # fmt: skip
    ok(env, "start")
    first = wait_until(lambda: watcher_running(env), what="watcher running")
    wait_until(lambda: agent(env, "d1")["activity"] == "idle", what="d1 idle")
    ok(env, "send", "d1", "one")
    busy = wait_event(env, "busy", "d1")
    idle = wait_event(env, "idle", "d1", after=busy["seq"])

    def noted() -> list[dict[str, Any]]:
        text = notes.read_text() if notes.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    # The idle notification arrives although the `sleep 60` one for busy still hangs.
    wait_until(lambda: len(noted()) == 2, timeout=8, what="two notes")
    got = noted()
    assert [n["event"] for n in got] == [busy, idle]
    assert got[1]["env"] == {"MOSAIC_EVENT_TYPE": "idle", "MOSAIC_EVENT_AGENT": "d1",
                             "MOSAIC_EVENT_SEQ": str(idle["seq"])}  # fmt: skip
    wait_until(lambda: good.got, timeout=8, what="webhook POST")
    assert good.got == [("/hook?x=1", "application/json", idle)]

    # Failures become events: the hanging command after its 10 s, the 500 after 3 tries.
    hung = wait_event(env, "notify_failed", after=idle["seq"], timeout=30)
    fails = {e["target"]: e["error"] for e in events(env, "--type", "notify_failed")}
    wait_until(lambda: len(fails) == 2 or fails.update(
        {e["target"]: e["error"] for e in events(env, "--type", "notify_failed")}),
        timeout=30, what="both failures")  # fmt: skip
    assert hung["agent"] in ("d1", None)
    assert fails["command: sleep 60"] == "timed out after 10 s"
    assert fails[f"webhook: http://127.0.0.1:{bad.server_address[1]}/broken"] == (
        "HTTP 500 (after 3 tries)"
    )
    assert len(bad.got) == 3

    # A watcher restart repeats nothing; the next occurrence notifies again.
    os.kill(first["pid"], signal.SIGKILL)
    wait_until(lambda: (w := watcher_running(env)) and w["pid"] != first["pid"], timeout=20,
               what="watcher back")  # fmt: skip
    ok(env, "send", "d1", "two")
    second = wait_event(env, "idle", "d1", after=idle["seq"])
    wait_until(lambda: len(noted()) == 4, timeout=15, what="four notes")
    assert [n["event"]["seq"] for n in noted()][-1] == second["seq"]
    seqs = [n["event"]["seq"] for n in noted()]
    assert len(seqs) == len(set(seqs))
    wait_until(lambda: len(good.got) == 2, timeout=10, what="second POST")
    assert [g[2]["seq"] for g in good.got] == [idle["seq"], second["seq"]]
    ok(env, "stop")


def test_desktop_text_is_never_an_option(tmp_path: Path) -> None:
    """The fake notify-send records its argv: event text comes after `--`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "argv.json"
    fake = bindir / "notify-send"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n")  # fmt: skip
    fake.chmod(0o755)
    event = Event(9, "2024-01-01T00:00:00.000Z", "d1", str(EventType.AWAITING_APPROVAL),
                  {"prompt": ["--help; $(touch pwned)", "Allow?"]})  # fmt: skip
    env = {"PATH": str(bindir), "DISPLAY": ":0"}
    assert notify.desktop(event, env) is None
    argv = json.loads(record.read_text())
    assert argv[:2] == ["--app-name=mosaic", "--"]
    assert argv[2:] == ["mosaic: d1 awaiting_approval", "--help; $(touch pwned)\nAllow?"]
    assert not (tmp_path / "pwned").exists()
    # Without a desktop session there is nothing to show it on: nothing runs.
    record.unlink()
    assert notify.desktop(event, {"PATH": str(bindir)}) is None
    assert not record.exists()


def test_matching() -> None:
    from mosaic.config.roster import NotifyTarget

    t = NotifyTarget(on=("idle", "notify_failed"), agents=("d1",), command=("x",))
    e = Event(1, "", "d1", "idle", {})
    assert notify.matches(t, e)
    assert not notify.matches(t, Event(1, "", "d2", "idle", {}))
    assert not notify.matches(t, Event(1, "", "d1", "busy", {}))
    # A target is never told about its own failure (no feedback loop).
    own = Event(2, "", "d1", "notify_failed", {"target": t.label, "error": "x"})
    assert not notify.matches(t, own)
    other = Event(3, "", "d1", "notify_failed", {"target": "webhook: http://h/", "error": "x"})
    assert notify.matches(t, other)
