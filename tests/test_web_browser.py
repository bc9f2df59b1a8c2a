"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright (never
Playwright's own browser build). The page shows a real fleet, and what is done on the page
happens to the real agents (the demo agent's --record file is what it really received);
what an agent prints cannot run in the page. Screenshots go to tests/output/ (gitignored).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import ClassVar

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from fleetkit import PY_CRASH, agent, mosaic, ok, tmux, write_roster
from helpers import wait_until
from mosaic.demo_agent import read_recording
from webkit import BROWSER_ARGS, CHROMIUM, Web, demo_fleet, running_web

OUTPUT = Path(__file__).resolve().parent / "output"
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


def open_page(browser: Browser, web: Web, width: int = 1280, height: int = 800,
              hash: str = "") -> Page:  # fmt: skip
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A CSP violation, a failed load or a script error is logged as a console error.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(web.url + hash)
    page.wait_for_selector("#conn.up", timeout=WAIT_MS)
    page.wait_for_selector("tr[data-agent]", timeout=WAIT_MS)
    assert "token=" not in page.url  # traded for the cookie, gone from the address bar
    page.set_default_timeout(WAIT_MS)
    setattr(page, "mosaic_errors", errors)  # noqa: B010 (checked by `no_errors`)
    return page


def no_errors(page: Page) -> None:
    errors = getattr(page, "mosaic_errors", [])
    assert errors == [], errors


def is_idle(env: dict[str, str], name: str) -> bool:
    return bool(agent(env, name)["activity"] == "idle")


def row_text(page: Page, name: str) -> str:
    return page.inner_text(f'tr[data-agent="{name}"]')


def screen_has(page: Page, text: str) -> None:
    page.wait_for_function("t => document.getElementById('screen').textContent.includes(t)",
                           arg=text)  # fmt: skip


def mark_page(page: Page) -> None:
    """A marker that only survives as long as the page is not reloaded."""
    page.evaluate("() => { window.__notReloaded = true; }")


def not_reloaded(page: Page) -> None:
    assert page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"


STATES_ROSTER = """\
version: 1
agents:
  - name: idle1
    runtime: demo
    args: ["--think", "0", "--record", {rec}]
  - name: busy1
    runtime: demo
    args: ["--think", "600"]
  - name: ask1
    runtime: demo
    args: ["--think", "0", "--approval-every", "1"]
  - name: crash1
    runtime: crash
  - name: off1
    runtime: shell
runtimes:
  crash:
    command: {crash}
    processes: [python3]
"""


def test_the_page_shows_every_agent_and_its_state(
    browser: Browser, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    rec = tmp_path / "idle1.jsonl"
    write_roster(env, STATES_ROSTER.format(rec=json.dumps(str(rec)), crash=json.dumps(PY_CRASH)))
    # The crasher may die before `start` has looked at it (then start says so, exit 1): the
    # states this test needs are waited for below instead.
    mosaic(env, "start")
    for name in ("idle1", "busy1", "ask1"):  # a send needs its prompt up
        wait_until(partial(is_idle, env, name), what=f"{name} idle")
    ok(env, "stop", "off1")
    ok(env, "send", "busy1", "think hard")
    ok(env, "send", "ask1", "delete the build dir")
    wait_until(lambda: agent(env, "crash1")["state"] == "failed", timeout=40, interval=0.3,
               what="crash1 failed")  # fmt: skip
    wait_until(lambda: agent(env, "ask1")["activity"] == "awaiting_approval", what="dialog")
    with running_web(env, tmp_path) as web:
        page = open_page(browser, web)
        expect = {
            "idle1": ("running", "idle"),
            "busy1": ("running", "busy"),
            "ask1": ("running", "awaiting approval"),
            "crash1": ("failed", None),
            "off1": ("stopped", None),
        }
        for name, (state, activity) in expect.items():
            page.wait_for_function(
                "([n, s, a]) => { const r = document.querySelector(`tr[data-agent='${n}']`);"
                " return r && r.querySelector('.c-state').textContent.includes(s) &&"
                " (a === null || r.querySelector('.c-activity').textContent.includes(a)); }",
                arg=[name, state, activity],
            )
        # Each kind of row has its own colour, besides its own words.
        colours = {}
        for name, cell in [("idle1", "c-activity"), ("busy1", "c-activity"),
                           ("ask1", "c-activity"), ("crash1", "c-state"),
                           ("off1", "c-state")]:  # fmt: skip
            colours[name] = page.eval_on_selector(
                f'tr[data-agent="{name}"] .{cell} .badge',
                "e => getComputedStyle(e).backgroundColor + getComputedStyle(e).color",
            )
        assert len(set(colours.values())) == len(colours), colours
        counts = page.inner_text("#counts")
        assert "5 agents" in counts and "1 awaiting approval" in counts and "1 failed" in counts
        no_errors(page)


def test_a_message_from_the_page_reaches_the_agent_and_its_reply_shows(
    browser: Browser, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    rec = demo_fleet(env, tmp_path, "--think", "1.5", shell=False)
    with running_web(env, tmp_path) as web:
        page = open_page(browser, web)
        mark_page(page)
        page.click('tr[data-agent="d1"]')
        screen_has(page, "demo>")
        message = "summarise the plan <b>please</b>\nsecond line"
        page.fill("#message", message)
        page.click("#send-button")
        page.wait_for_function(
            "() => document.getElementById('send-result').textContent.startsWith('accepted')"
        )
        assert read_recording(str(rec)) == [message]
        screen_has(page, "reply #1: summarise the plan <b>please</b>")
        # The turn (busy past the debounce, then idle) shows up in the agent's recent events
        # without a reload.
        events_say = "t => document.getElementById('events').textContent.includes(t)"
        page.wait_for_function(events_say, arg="idle")
        assert "sent" in page.inner_text("#events")
        assert page.input_value("#message") == ""
        # Ctrl+Enter sends too.
        page.fill("#message", "again")
        page.press("#message", "Control+Enter")
        screen_has(page, "reply #2: again")
        assert read_recording(str(rec)) == [message, "again"]
        not_reloaded(page)
        no_errors(page)


def test_an_approval_is_answered_from_the_page(
    browser: Browser, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    rec = demo_fleet(env, tmp_path, "--think", "0", "--approval-every", "1", shell=False)
    with running_web(env, tmp_path) as web:
        page = open_page(browser, web, hash="#d1")
        mark_page(page)
        assert page.is_hidden("#approval")
        page.fill("#message", "rm -rf build")
        page.click("#send-button")
        page.wait_for_selector("#approval", state="visible")
        screen_has(page, "Allow? (y/n)")
        page.click("#approval .approve")
        screen_has(page, "allowed (y)")
        screen_has(page, "reply #1: rm -rf build")
        page.wait_for_selector("#approval", state="hidden")
        assert page.inner_text("#action-result").startswith("approved")
        page.fill("#message", "and the cache")
        page.click("#send-button")
        page.wait_for_selector("#approval", state="visible")
        page.click("#approval .deny")
        screen_has(page, "reply #2: denied")
        assert read_recording(str(rec)) == ["rm -rf build", "and the cache"]
        not_reloaded(page)
        no_errors(page)


def test_a_stopped_agent_is_started_from_the_page(
    browser: Browser, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    write_roster(env, "version: 1\nagents:\n  - name: sh1\n    runtime: shell\n"
                      "  - name: sh2\n    runtime: shell\n")  # fmt: skip
    ok(env, "start")
    ok(env, "stop", "sh1")
    with running_web(env, tmp_path) as web:
        page = open_page(browser, web)
        mark_page(page)
        assert "stopped" in row_text(page, "sh1")
        page.click('tr[data-agent="sh1"]')
        assert page.is_disabled('button[data-action="stop"]')
        page.click('button[data-action="start"]')
        page.wait_for_function(
            "() => document.querySelector(\"tr[data-agent='sh1'] .c-state\").textContent"
            ".includes('running')"
        )
        assert agent(env, "sh1")["state"] == "running"
        assert "sh1" in page.inner_text("#action-result")
        # Its screen comes alive: what the shell prints appears.
        tmux(env, "send-keys", "-t", "=sh1:", "-l", "echo started-from-the-$((2+3))-page")
        tmux(env, "send-keys", "-t", "=sh1:", "Enter")
        screen_has(page, "started-from-the-5-page")
        page.click('button[data-action="stop"]')
        page.wait_for_function(
            "() => document.querySelector(\"tr[data-agent='sh1'] .c-state\").textContent"
            ".includes('stopped')"
        )
        assert agent(env, "sh1")["state"] == "stopped"
        not_reloaded(page)
        no_errors(page)


def test_an_unknown_or_malformed_agent_in_the_address_falls_back_to_the_fleet(
    browser: Browser, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    with running_web(env, tmp_path) as web:
        for hash in ("#nobody", "#%E0%A4%A", "#%3Cimg%20src%3Dx%3E"):
            page = open_page(browser, web, hash=hash)
            page.wait_for_selector("#none", state="visible")
            assert page.is_hidden("#agent")
            assert "d1" in row_text(page, "d1")
            # The only error: the stream refused for the unknown agent (404), once.
            errors = getattr(page, "mosaic_errors", [])
            assert all("404" in e for e in errors), errors
            page.context.close()


class _Hits(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Hits.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


HOSTILE = """\
#!/bin/bash
# Prints what a hostile (or merely careless) program might: markup and script, in colour
# and plain, then a marker, then an approval question that quotes the markup.
H=http://127.0.0.1:{port}
printf '\\033[31m<img src=x onerror="window.__pwned=1;fetch(\\x27%s/img\\x27)">\\033[0m\\n' "$H"
printf '<script>window.__pwned=2;fetch("%s/script")</script>\\n' "$H"
printf '<svg onload="window.__pwned=3"></svg><a href="javascript:window.__pwned=4">x</a>\\n'
printf '&lt;b&gt; &amp; "quotes" \\x27single\\x27\\n'
printf 'payload-printed\\n'
read -r _
printf 'Allow? <img src=x onerror="window.__pwned=5;fetch(\\x27%s/prompt\\x27)">\\n' "$H"
exec sleep 600
"""


def test_screen_text_never_runs_in_the_page(
    browser: Browser, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hits)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hits.hits = []
    script = tmp_path / "hostile.sh"
    script.write_text(HOSTILE.format(port=server.server_address[1]))
    script.chmod(0o755)
    write_roster(env, f"""\
version: 1
agents:
  - name: evil
    runtime: hostile
runtimes:
  hostile:
    command: [{json.dumps(str(script))}]
    processes: [hostile.sh, sleep]
    approval: '^Allow\\?'
    ready: 'payload-printed'
""")  # fmt: skip
    ok(env, "start")
    try:
        with running_web(env, tmp_path) as web:
            page = open_page(browser, web, hash="#evil")
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            screen_has(page, "payload-printed")
            # The question that quotes the markup: it reaches the events list too.
            tmux(env, "send-keys", "-t", "=evil:", "Enter")
            screen_has(page, "Allow? <img")
            page.wait_for_function(
                "() => document.getElementById('events').textContent.includes('awaiting approval')"
            )
            # A marker that comes after everything: by now any payload would have run.
            page.evaluate("() => { fetch('/api/status').then(() => { window.__after = true; }); }")
            page.wait_for_function("() => window.__after === true")
            shown = page.inner_text("#screen")
            assert '<img src=x onerror="window.__pwned=1;' in shown
            assert '<script>window.__pwned=2;fetch("' in shown
            assert "&lt;b&gt; &amp;" in shown  # entities printed by the agent stay as printed
            assert page.evaluate("() => typeof window.__pwned") == "undefined"
            for where in ("#screen", "#events", "#agents", "body"):
                found = page.eval_on_selector(
                    where, "e => e.querySelectorAll('img, script:not([src]), svg, a, iframe')"
                    ".length")  # fmt: skip
                assert found == 0, where
            assert page.eval_on_selector_all("script", "s => s.map(x => x.src)") == [
                f"{web.origin}/static/app.js"
            ]
            assert "<img" in page.inner_text("#events")
            assert _Hits.hits == []
            assert not [u for u in requests if "/x" in u or str(server.server_address[1]) in u]
            no_errors(page)
    finally:
        server.shutdown()
        server.server_close()


SCREENSHOT_AGENTS = 50


def test_screenshots_of_a_50_agent_fleet_on_desktop_and_phone(
    browser: Browser, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """Pictures to look at (tests/output/); the test itself checks that all 50 rows are
    there and that a 390 px phone needs no sideways scrolling of the page."""
    env = fleet_env
    names = [f"agent{i:02d}" for i in range(SCREENSHOT_AGENTS - 3)]
    body = "".join(f"  - name: {n}\n    runtime: shell\n" for n in names)
    body += ('  - name: demo0\n    runtime: demo\n    args: ["--think", "600"]\n'
             '  - name: demo1\n    runtime: demo\n    args: ["--approval-every", "1"]\n'
             "  - name: crash0\n    runtime: crash\n")  # fmt: skip
    body += f"runtimes:\n  crash:\n    command: {json.dumps(PY_CRASH)}\n    processes: [python3]\n"
    write_roster(env, "version: 1\nagents:\n" + body)
    mosaic(env, "start")  # as above: crash0 may be gone before start looks
    for name in ("demo0", "demo1"):  # a send needs its prompt up
        wait_until(partial(is_idle, env, name), what=f"{name} idle")
    ok(env, "stop", "agent03")
    colours = r"printf '\033[1;32mok\033[0m \033[33mwarn\033[0m \033[41;97m FAIL \033[0m\n'"
    tmux(env, "send-keys", "-t", "=agent00:", "-l", colours + "; ls -la /")
    tmux(env, "send-keys", "-t", "=agent00:", "Enter")
    ok(env, "send", "demo0", "think for a long time")
    ok(env, "send", "demo1", "rm -rf /tmp/scratch")
    wait_until(lambda: agent(env, "crash0")["state"] == "failed", timeout=40, interval=0.3,
               what="crash0 failed")  # fmt: skip
    OUTPUT.mkdir(exist_ok=True)
    shots = []
    with running_web(env, tmp_path) as web:
        desk = open_page(browser, web, 1280, 800, hash="#agent00")
        desk.wait_for_function("() => document.querySelectorAll('tr[data-agent]').length === 50")
        desk.wait_for_function(
            "() => document.querySelector(\"tr[data-agent='demo1'] .c-activity\").textContent"
            ".includes('awaiting')"
        )
        screen_has(desk, "FAIL")
        shots.append(OUTPUT / "web-desktop-1280.png")
        desk.screenshot(path=str(shots[-1]))
        no_errors(desk)

        phone = open_page(browser, web, 390, 844)
        phone.wait_for_function("() => document.querySelectorAll('tr[data-agent]').length === 50")
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the phone page is {width} px wide"
        shots.append(OUTPUT / "web-phone-390-list.png")
        phone.screenshot(path=str(shots[-1]))
        phone.click('tr[data-agent="demo1"]')
        phone.wait_for_selector("#approval", state="visible")
        screen_has(phone, "Allow?")
        assert phone.is_hidden("#fleet")
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the phone detail page is {width} px wide"
        shots.append(OUTPUT / "web-phone-390-agent.png")
        phone.screenshot(path=str(shots[-1]))
        phone.click("#back")
        phone.wait_for_selector("#fleet", state="visible")
        no_errors(phone)
    for shot in shots:
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
