"""The dashboard across hosts: a remote agent is listed with its host, its screen is read
there (and streamed, live, by one poller per host), a message from the API reaches it once
(its --record file is the proof), its events arrive tagged with its host, approve goes to
the host, an unreachable host is shown as such while this machine's agents still work, and
whatever a remote agent prints is text on the page. Real sshd in network namespaces
(tests/hostlab.py), real HTTP, real chromium."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetkit import ok, write_roster
from helpers import wait_until
from hostlab import VENV_BIN, Lab, all_running, open_lab, recording
from webkit import BROWSER_ARGS, CHROMIUM, Stream, Web, running_web

OUTPUT = Path(__file__).resolve().parent / "output"  # screenshots (gitignored)
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


def _fleet(lab: Lab, fleet_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A started fleet: `loc` on this machine and `r1` on host h1, demo agents that record
    what they receive in tmp_path/NAME.jsonl; back once both are running."""
    lab.add("h1")
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("loc", None), ("r1", "h1")]))
    ok(env, "start")
    wait_until(lambda: all_running(env, ["loc", "r1"]), timeout=40, what="loc and r1 running")
    return env


def _rows(web: Web) -> dict[str, dict[str, Any]]:
    reply = web.request("GET", "/api/status")
    assert reply.status == 200, reply.text
    return {row["name"]: row for row in reply.json()["agents"]}


def _hosts(web: Web) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in web.request("GET", "/api/status").json()["hosts"]}


def _send(web: Web, name: str, message: str) -> dict[str, Any]:
    reply = web.request("POST", f"/api/agents/{name}/send", {"message": message})
    assert reply.status == 200, reply.text
    result: dict[str, Any] = reply.json()["results"][0]
    return result


def _screen_event(stream: Stream, text: str) -> dict[str, Any]:
    """The next `screen` of the stream whose text has `text` (sent by h1's poller)."""
    event = stream.until(
        lambda e: e.get("event") == "screen" and text in json.loads(e["data"])["text"],
        f"a screen with {text!r}", timeout=30,
    )  # fmt: skip
    doc: dict[str, Any] = json.loads(event["data"])
    return doc


def _followers(target: str) -> list[str]:
    """This machine's `ssh TARGET ... events --follow` clients."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in argv]
        if words and Path(words[0]).name == "ssh" and target in words and any(
            "--follow" in w for w in words
        ):
            found.append(" ".join(words))
    return found


def test_the_api_shows_and_acts_on_a_remote_agent(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = _fleet(lab, fleet_env, tmp_path)
    with running_web(env, tmp_path) as web:
        rows = _rows(web)
        assert (rows["loc"]["host"], rows["loc"]["state"]) == ("local", "running")
        assert (rows["r1"]["host"], rows["r1"]["state"]) == ("h1", "running")
        assert _hosts(web)["h1"]["reachable"] is True

        # Its screen, read on h1.
        reply = web.request("GET", "/api/agents/r1/screen")
        assert reply.status == 200, reply.text
        doc = reply.json()
        assert doc["agent"] == "r1" and doc["host"] == "h1" and doc["error"] is None
        assert "demo agent" in doc["text"].lower() or doc["text"].strip(), doc

        # Live: the page watching r1 gets its screen from h1's poller as it changes.
        stream = Stream(web, "?screen=r1")
        try:
            first = stream.until(lambda e: e.get("event") == "screen", "r1's screen")
            assert json.loads(first["data"])["host"] == "h1"
            result = _send(web, "r1", "hello from the dashboard")
            assert result["host"] == "h1" and result["accepted"] is True, result
            _screen_event(stream, "reply #1: hello from the dashboard")
            # One follower of h1's events runs while a page listens (checked gone below).
            wait_until(lambda: _followers(lab.hosts["h1"].target), what="h1's event stream")
            assert recording(tmp_path / "r1.jsonl") == ["hello from the dashboard"]

            # What a remote agent prints is escaped like a local screen.
            assert _send(web, "r1", HOSTILE)["accepted"] is True
            shown = _screen_event(stream, "reply #2: <script>")
            assert "<script" not in shown["html"] and "<img" not in shown["html"]
            assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img" in shown["html"]
            html = web.request("GET", "/api/agents/r1/screen").json()["html"]
            assert "<script" not in html and "<img" not in html and "&lt;img src=x" in html
        finally:
            stream.close()
        assert recording(tmp_path / "r1.jsonl") == ["hello from the dashboard", HOSTILE]
        assert recording(tmp_path / "loc.jsonl") == []  # nothing went to this machine's

        # Its events come from h1's log, tagged with h1.
        def sent_events() -> list[dict[str, Any]]:
            lines = web.request("GET", "/api/events?agent=r1").text.splitlines()
            return [e for e in map(json.loads, lines) if e["type"] == "sent"]

        wait_until(lambda: len(sent_events()) == 2, timeout=20, what="r1's sent events")
        assert {e["host"] for e in sent_events()} == {"h1"}

        # Queued for r1: stored in h1's outbox (the id names h1), delivered there once.
        reply = web.request("POST", "/api/agents/r1/send", {"message": "later", "queue": True})
        assert reply.status == 200, reply.text
        [queued] = reply.json()["messages"]
        assert queued["host"] == "h1" and str(queued["id"]).startswith("h1:"), queued
        wait_until(lambda: recording(tmp_path / "r1.jsonl")[-1:] == ["later"], timeout=30,
                   what="the queued message delivered on h1")  # fmt: skip
        assert recording(tmp_path / "r1.jsonl") == ["hello from the dashboard", HOSTILE, "later"]

        # approve goes to h1 (this machine has no session r1 to read): nothing waits there.
        reply = web.request("POST", "/api/agents/r1/approve")
        assert reply.status == 200, reply.text
        assert {k: reply.json()[k] for k in ("outcome", "host", "keys")} == {
            "outcome": "not_awaiting", "host": "h1", "keys": []
        }  # fmt: skip

        # h1 unreachable: shown as such; this machine's agent still works.
        lab.hosts["h1"].kill_sshd()
        wait_until(lambda: _hosts(web)["h1"]["reachable"] is False, timeout=30,
                   what="h1 unreachable")  # fmt: skip
        rows = _rows(web)
        assert rows["r1"]["state"] == "unknown" and rows["r1"]["reason"], rows["r1"]
        assert rows["loc"]["state"] == "running"
        reply = web.request("GET", "/api/agents/r1/screen")
        assert reply.status == 502 and "host h1 unreachable" in reply.json()["error"], reply.text
        reply = web.request("POST", "/api/agents/r1/send", {"message": "lost?", "queue": True})
        assert reply.status == 502 and "h1" in reply.json()["error"], reply.text
        assert _send(web, "loc", "still here")["accepted"] is True
        assert recording(tmp_path / "loc.jsonl") == ["still here"]
        stream = Stream(web, "?screen=r1")
        try:
            event = stream.until(lambda e: e.get("event") == "screen", "r1's screen")
            doc = json.loads(event["data"])
            assert doc["host"] == "h1" and "h1" in doc["error"] and doc["text"] == "", doc
        finally:
            stream.close()
    assert recording(tmp_path / "r1.jsonl") == ["hello from the dashboard", HOSTILE, "later"]
    # The dashboard's ssh clients (its event follower's streams) ended with it.
    assert _followers(lab.hosts["h1"].target) == []
    lab.hosts["h1"].start_sshd()
    ok(env, "stop")


def test_a_reconnecting_page_is_replayed_what_it_missed_of_every_machine(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """The stream's ids say where the page is in every machine's log; a page that comes
    back with the last one gets the events it missed, this machine's and h1's, once."""
    env = _fleet(lab, fleet_env, tmp_path)
    with running_web(env, tmp_path) as web:
        stream = Stream(web, "")
        try:
            assert stream.next()["event"] == "hello"
            assert _send(web, "r1", "before")["accepted"] is True
            seen = stream.until(lambda e: e.get("event") == "event"
                                and json.loads(e["data"])["host"] == "h1"
                                and json.loads(e["data"])["type"] == "sent",
                                "r1's sent event, from h1", timeout=30)  # fmt: skip
            h1_seq = json.loads(seen["data"])["seq"]
            marks = dict(item.split(":") for item in seen["id"].split(","))
            assert int(marks["h1"]) == h1_seq and "local" in marks
        finally:
            stream.close()
        # Away: one event on each machine.
        assert _send(web, "r1", "while away")["accepted"] is True
        assert _send(web, "loc", "while away")["accepted"] is True

        def sent_after(host: str, seq: int) -> list[dict[str, Any]]:
            lines = web.request("GET", "/api/events?type=sent").text.splitlines()
            return [e for e in map(json.loads, lines) if e["host"] == host and e["seq"] > seq]

        wait_until(lambda: sent_after("h1", h1_seq), timeout=20, what="h1's event")
        missed = {(e["host"], e["seq"]) for e in sent_after("h1", h1_seq)}
        missed |= {(e["host"], e["seq"]) for e in sent_after("local", int(marks["local"]))}
        assert {h for h, _ in missed} == {"h1", "local"}
        again = Stream(web, "", headers={"Last-Event-ID": seen["id"]})
        try:
            assert again.next()["event"] == "hello"
            got: list[tuple[str, int]] = []
            while not missed <= set(got):
                e = again.next()
                if e["event"] == "event":
                    doc = json.loads(e["data"])
                    if doc["type"] == "sent":
                        got.append((doc["host"], doc["seq"]))
            assert len(got) == len(set(got))  # each once
            assert ("h1", h1_seq) not in got  # the page had it
        finally:
            again.close()
        for bad in ("h1:x", "h1", "local:1,local:2", ":3"):
            reply = web.request("GET", f"/api/events/stream?since={bad}")
            assert reply.status == 400 and "HOST:SEQ" in reply.json()["error"], bad
    ok(env, "stop")


def test_a_remote_screen_keeps_its_colours(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """A bash agent on h1 prints red text: `capture --escapes` (what the dashboard asks a
    host) keeps the colour, plain `capture` does not, and the page's markup colours it as
    a local screen's, escaped alike, whether read once (API) or streamed by the poller."""
    lab.add("h1")
    env = lab.env(fleet_env)
    write_roster(env, "version: 1\n" + lab.hosts_yaml("h1")
                 + "agents:\n  - {name: c1, runtime: shell, host: h1}\n")  # fmt: skip
    ok(env, "start")
    wait_until(lambda: all_running(env, ["c1"]), timeout=40, what="c1 running")
    ok(env, "send", "c1", "printf '\\033[31m<b>RED</b>\\033[0m & %s\\n' done")
    wait_until(lambda: "<b>RED</b> & done" in ok(env, "capture", "c1").out, what="the line")
    plain = ok(env, "capture", "c1").out
    coloured = ok(env, "capture", "c1", "--escapes").out
    assert "\x1b" not in plain and "\x1b[31m<b>RED</b>" in coloured
    markup = '<span class="f1">&lt;b&gt;RED&lt;/b&gt;</span> &amp; done'
    with running_web(env, tmp_path) as web:
        doc = web.request("GET", "/api/agents/c1/screen").json()
        assert doc["host"] == "h1" and markup in doc["html"], doc["html"]
        assert "<b>RED</b> & done" in doc["text"] and "\x1b" not in doc["text"]
        stream = Stream(web, "?screen=c1")
        try:
            shown = _screen_event(stream, "<b>RED</b> & done")
            assert markup in shown["html"]
        finally:
            stream.close()


def test_one_poller_per_host_serves_every_page_and_only_while_one_watches(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    # h1's `mosaic` notes every agent it is asked to `capture`, in order, then runs.
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    log = tmp_path / "captures.log"
    (wrap / "mosaic").write_text(
        "#!/bin/sh\nprev=\n"
        f'for a in "$@"; do [ "$prev" = capture ] && echo "$a" >> {log}; prev=$a; done\n'
        f'exec {VENV_BIN}/mosaic "$@"\n'
    )  # fmt: skip
    (wrap / "mosaic").chmod(0o755)
    lab.add("h1", path_first=wrap)
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1"), ("r2", "h1")]))
    ok(env, "start")
    wait_until(lambda: all_running(env, ["r1", "r2"]), timeout=40, what="r1 and r2 running")

    def captured() -> list[str]:
        return log.read_text().split() if log.exists() else []

    with running_web(env, tmp_path) as web:
        assert captured() == []  # no page: h1 is not asked for screens
        pages = [Stream(web, "?screen=r1"), Stream(web, "?screen=r1"), Stream(web, "?screen=r2")]
        try:
            for page in pages:
                page.until(lambda e: e.get("event") == "screen", "a screen")
            start = len(captured())
            wait_until(lambda: len(captured()) >= start + 8, timeout=30, what="4 polls of h1")
            # One poller for the three pages: each round asks for r1 once, then r2.
            rounds = captured()[start + 1 : start + 7]
            for a, b in itertools.pairwise(rounds):
                assert a != b, captured()
            for page in pages[:2]:
                page.close()
            # r1 watched by no page: the poller goes on for r2 alone. A round under way, and
            # one more begun before the dashboard saw the pages go, may still ask for r1;
            # any later round that did would come before r2's fourth capture since.
            closed = len(captured())
            wait_until(lambda: captured()[closed:].count("r2") >= 4, timeout=30,
                       what="4 polls of r2")  # fmt: skip
            after = captured()[closed:]
            second = after.index("r2", after.index("r2") + 1)
            assert "r1" not in after[second + 1 :], after
        finally:
            for page in pages:
                page.close()
    ok(env, "stop")


def test_the_page_shows_the_remote_agent_its_host_and_its_screen(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    env = _fleet(lab, fleet_env, tmp_path)
    with running_web(env, tmp_path) as web, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.set_default_timeout(20_000)
            page.goto(web.url + "#r1")
            page.wait_for_selector('tr[data-agent="r1"]')
            assert page.inner_text('tr[data-agent="r1"] .c-host') == "h1"
            assert page.inner_text('tr[data-agent="loc"] .c-host') == "local"
            assert page.is_visible("th:nth-child(2)")  # the host column is shown
            page.wait_for_selector('#hosts li[data-host="h1"].up')
            assert page.inner_text("#agent-host") == "on h1"
            # Its screen, live from h1: a message sent meanwhile shows up without reload.
            ok(env, "send", "r1", HOSTILE)
            page.wait_for_function(
                "t => document.getElementById('screen').textContent.includes(t)",
                arg="reply #1: <script>",
            )
            assert page.evaluate("() => typeof window.__pwned") == "undefined"
            markup = "e => e.querySelectorAll('*:not(span)').length"
            assert page.eval_on_selector("#screen", markup) == 0
            # The host's events, tagged with it, in the agent's list.
            page.wait_for_function(
                "() => [...document.querySelectorAll('#events .ev-host')]"
                ".some(e => e.textContent === 'h1')"
            )
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "web-hosts-1280.png"))
            # Restart from the page: done on h1 (a new process there), its lines shown.
            before = _rows(web)["r1"]["pid"]
            page.click('button[data-action="restart"]')
            page.wait_for_selector("#action-result.good")
            wait_until(lambda: _rows(web)["r1"]["pid"] not in (None, before), timeout=30,
                       what="r1 restarted on h1")  # fmt: skip
            assert "h1" in page.inner_text("#action-result")
            # h1 unreachable: named above the list, r1 unknown, its screen says why.
            lab.hosts["h1"].kill_sshd()
            page.wait_for_selector('#hosts li[data-host="h1"].down')
            assert "h1: unreachable" in page.inner_text("#hosts")
            page.wait_for_function(
                "() => document.querySelector(\"tr[data-agent='r1'] .c-state\")"
                ".textContent.includes('unknown')"
            )
            page.wait_for_function(
                "() => document.getElementById('screen').textContent"
                ".includes('(no screen: host h1 unreachable')"
            )
            assert "running" in page.inner_text('tr[data-agent="loc"] .c-state')
            page.screenshot(path=str(OUTPUT / "web-hosts-unreachable-1280.png"))
            assert errors == [], errors
        finally:
            browser.close()
    lab.hosts["h1"].start_sshd()
    ok(env, "stop")
