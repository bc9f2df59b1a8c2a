"""The dashboard's JSON API and its live stream (docs/reference.md, "web"): the documents
are the CLI's own (`status --json`, `events --json`, `send --json`, `approve --json`), the
actions act, and the stream carries events (resumable by seq) and screen changes."""

from __future__ import annotations

import json
from pathlib import Path

from fleetkit import agent, ok, status, tmux
from helpers import wait_until
from mosaic.demo_agent import read_recording
from webkit import Stream, demo_fleet, pid_of, running_web


def lines(text: str) -> list[str]:
    return [ln for ln in text.split("\n") if ln]


def test_status_is_the_status_document(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    with running_web(env, tmp_path) as web:
        reply = web.request("GET", "/api/status")
        assert reply.status == 200
        assert (reply.header("Content-Type") or "").startswith("application/json")
        api, cli = reply.json(), status(env)
        assert list(api) == list(cli)
        assert [list(a) for a in api["agents"]] == [list(a) for a in cli["agents"]]
        for key in ("name", "runtime", "state", "activity", "pid", "restarts", "session"):
            assert [a[key] for a in api["agents"]] == [a[key] for a in cli["agents"]], key
        assert api["supervisor"] == cli["supervisor"] == "tmux"
        assert api["watcher"]["state"] == "running"


def test_events_are_the_events_lines(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    ok(env, "send", "d1", "one")
    ok(env, "send", "d1", "two")
    with running_web(env, tmp_path) as web:
        for query, args in [
            ("", []),
            ("?since=3", ["--since", "3"]),
            ("?since=1h", ["--since", "1h"]),
            ("?agent=d1", ["d1"]),
            ("?type=sent&type=started", ["--type", "sent", "--type", "started"]),
            ("?agent=d1&type=sent", ["d1", "--type", "sent"]),
        ]:
            reply = web.request("GET", f"/api/events{query}")
            assert reply.status == 200, (query, reply.text)
            assert reply.text == ok(env, "events", "--json", *args).out, query
        every = lines(ok(env, "events", "--json").out)
        assert len(every) >= 5
        assert lines(web.request("GET", "/api/events?last=2").text) == every[-2:]
        sent = lines(ok(env, "events", "--json", "--type", "sent").out)
        last_sent = web.request("GET", "/api/events?type=sent&last=1").text
        assert lines(last_sent) == sent[-1:]
        assert json.loads(sent[-1])["outcome"] == "accepted"

        unknown = web.request("GET", "/api/events?agent=nobody")
        assert unknown.status == 404 and "known agents: d1, sh1" in unknown.json()["error"]
        for bad in ("?type=nonsense", "?since=yesterday", "?last=many"):
            assert web.request("GET", f"/api/events{bad}").status == 400, bad


def test_send_types_with_proof_and_answers_like_the_cli(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    rec = demo_fleet(env, tmp_path, "--think", "0")
    tricky = "line one\nline two: $(touch /tmp/x) `id`; C-c Enter 'quoted' \"dq\" \t tab ü"
    with running_web(env, tmp_path) as web:
        reply = web.request("POST", "/api/agents/d1/send", {"message": tricky})
        assert reply.status == 200, reply.text
        doc = reply.json()
        cli = json.loads(ok(env, "send", "--json", "d1", "from the cli").out)
        assert list(doc) == list(cli) == ["results"]
        assert list(doc["results"][0]) == list(cli["results"][0])
        assert doc["results"][0]["outcome"] == "accepted" and doc["results"][0]["accepted"]
        assert read_recording(str(rec)) == [tricky, "from the cli"]

        refused = [
            ({"message": "   \n "}, 400, "the message is empty"),
            ({"message": 5}, 400, "message"),
            ({"text": "x"}, 400, "message"),
            ({"message": "x", "queue": "yes"}, 400, "queue"),
            ({"message": "x", "timeout": 0}, 400, "timeout"),
            ({"message": "x", "timeout": True}, 400, "timeout"),
        ]
        for body, code, words in refused:
            reply = web.request("POST", "/api/agents/d1/send", body)
            assert reply.status == code and words in reply.json()["error"], (body, reply.text)
        assert web.request("POST", "/api/agents/d1/send", b"{not json").status == 400
        form_type = {"Content-Type": "application/x-www-form-urlencoded"}
        form = web.request("POST", "/api/agents/d1/send", b"message=x", headers=form_type)
        assert form.status == 415
        unknown = web.request("POST", "/api/agents/nobody/send", {"message": "x"})
        assert unknown.status == 404 and "known agents" in unknown.json()["error"]
        assert read_recording(str(rec)) == [tricky, "from the cli"]

        ok(env, "stop", "d1")
        down = web.request("POST", "/api/agents/d1/send", {"message": "x"}).json()
        assert down["results"][0]["outcome"] == "not_running"

        # Queued instead: the outbox keeps it (the document `send --queue --json` prints),
        # and the watcher delivers it once the agent is back.
        queued = web.request("POST", "/api/agents/d1/send", {"message": "later", "queue": True})
        assert queued.status == 200, queued.text
        [message] = queued.json()["messages"]
        cli = json.loads(ok(env, "send", "--queue", "--json", "d1", "later too").out)
        assert list(message) == list(cli["messages"][0])
        assert (message["agent"], message["state"]) == ("d1", "queued")
        ok(env, "start", "d1")
        wait_until(lambda: read_recording(str(rec))[-2:] == ["later", "later too"], timeout=30,
                   what="the queued messages delivered")  # fmt: skip


def test_start_stop_restart_and_approve(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    rec = demo_fleet(env, tmp_path, "--think", "0", "--approval-every", "1")
    with running_web(env, tmp_path) as web:
        before = pid_of(env, "sh1")
        reply = web.request("POST", "/api/agents/sh1/stop")
        assert reply.status == 200
        doc = reply.json()
        assert doc["agent"] == "sh1" and doc["action"] == "stop" and doc["ok"] is True
        assert any("sh1" in line for line in doc["lines"])
        assert agent(env, "sh1")["state"] == "stopped"
        assert web.request("POST", "/api/agents/sh1/start").status == 200
        started = wait_until(lambda: pid_of(env, "sh1"), what="sh1 running")
        assert started != before
        assert web.request("POST", "/api/agents/sh1/restart").status == 200
        restarted = wait_until(lambda: (p := pid_of(env, "sh1")) != started and p,
                               what="a new pid")  # fmt: skip
        assert restarted
        assert web.request("POST", "/api/agents/sh1/explode").status == 404
        assert web.request("POST", "/api/agents/nobody/stop").status == 404

        nothing = web.request("POST", "/api/agents/d1/approve").json()
        assert nothing["outcome"] == "not_awaiting" and nothing["keys"] == []
        web.request("POST", "/api/agents/d1/send", {"message": "rm -rf build"})
        wait_until(lambda: agent(env, "d1")["activity"] == "awaiting_approval", what="dialog")
        approved = web.request("POST", "/api/agents/d1/approve").json()
        assert approved["outcome"] == "approved" and approved["ok"] is True
        web.request("POST", "/api/agents/d1/send", {"message": "and the cache"})
        wait_until(lambda: agent(env, "d1")["activity"] == "awaiting_approval", what="dialog 2")
        denied = web.request("POST", "/api/agents/d1/deny").json()
        assert denied["outcome"] == "denied" and denied["keys"] == ["n"]
        assert read_recording(str(rec)) == ["rm -rf build", "and the cache"]


def test_the_screen_is_text_and_escaped_html(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    tmux(env, "send-keys", "-t", "=sh1:", "-l",
         "printf '\\033[31m<b>red</b>\\033[0m & done\\n'")  # fmt: skip
    tmux(env, "send-keys", "-t", "=sh1:", "Enter")
    with running_web(env, tmp_path) as web:
        def shown() -> dict[str, object] | None:
            doc: dict[str, object] = web.request("GET", "/api/agents/sh1/screen").json()
            return doc if "& done" in str(doc["text"]) else None

        doc = wait_until(shown, what="the printed line")
        assert doc["agent"] == "sh1" and doc["dead"] is False
        assert "<b>red</b> & done" in str(doc["text"])
        assert '<span class="f1">&lt;b&gt;red&lt;/b&gt;</span> &amp; done' in str(doc["html"])
        ok(env, "stop", "sh1")
        gone = web.request("GET", "/api/agents/sh1/screen")
        assert gone.status == 409 and "not running" in gone.json()["error"]
        assert web.request("GET", "/api/agents/nobody/screen").status == 404


def test_the_stream(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    with running_web(env, tmp_path) as web:
        stream = Stream(web, "?screen=sh1")
        try:
            hello = stream.next()
            assert hello["event"] == "hello" and json.loads(hello["data"])["queue"] is True
            top = int(hello["id"])
            stream.until(lambda e: {"status", "screen"} <= {s["event"] for s in stream.seen},
                         "the status and the first screen")  # fmt: skip
            # A screen change reaches the stream without anyone asking.
            tmux(env, "send-keys", "-t", "=sh1:", "-l", "echo stream-marker-$((6*7))")
            tmux(env, "send-keys", "-t", "=sh1:", "Enter")
            stream.until(lambda e: e["event"] == "screen"
                         and "stream-marker-42" in json.loads(e["data"])["text"],
                         "the marker")  # fmt: skip
            # So do events, each with its seq as the SSE id.
            ok(env, "send", "d1", "hello")
            sent = stream.until(lambda e: e["event"] == "event"
                                and json.loads(e["data"])["type"] == "sent",
                                "the sent event")  # fmt: skip
            assert int(sent["id"]) == json.loads(sent["data"])["seq"] > top
            # Another agent's screen is not this page's business.
            others = [e for e in stream.seen if e["event"] == "screen"]
            assert {json.loads(e["data"])["agent"] for e in others} == {"sh1"}
        finally:
            stream.close()
        # A reconnecting page resumes after its last seq: exactly the events it missed.
        ok(env, "send", "d1", "while away")
        every = [json.loads(ln) for ln in lines(ok(env, "events", "--json").out)]
        missed = [e for e in every if e["seq"] > int(sent["id"])]
        assert missed
        again = Stream(web, "", headers={"Last-Event-ID": sent["id"]})
        try:
            assert again.next()["event"] == "hello"
            got: list[dict[str, object]] = []
            while len(got) < len(missed):
                e = again.next()
                if e["event"] == "event":
                    got.append(json.loads(e["data"]))
            assert got == missed
        finally:
            again.close()
        bad = web.request("GET", "/api/events/stream?screen=nobody")
        assert bad.status == 404


def test_a_roster_error_reaches_the_page(fleet_env: dict[str, str], tmp_path: Path) -> None:
    """A roster broken while the dashboard runs is reported on the stream (the page shows
    it), and the last good fleet stays on the page."""
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    with running_web(env, tmp_path) as web:
        stream = Stream(web)
        try:
            stream.until(lambda e: e["event"] == "status", "status")
            roster = Path(env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"
            roster.write_text(roster.read_text() + "  - name: BAD\n    runtime: shell\n")
            problem = stream.until(lambda e: e["event"] == "problem", "the problem", timeout=30)
            assert f"{roster}:" in json.loads(problem["data"])["error"]
        finally:
            stream.close()
        assert web.request("GET", "/api/status").status == 500
