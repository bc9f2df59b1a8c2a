"""The dashboard's guard over plain HTTP (docs/reference.md, "web"): the token on every route,
the cookie it is traded for, POST-only state changes with an Origin check, no path
traversal, loopback unless told otherwise, HTTPS, and a clean exit. Each refusal is shown
to have done nothing: the agent's pid is the same, and the demo agent's --record file (what
it really received) holds only a marker typed afterwards."""

from __future__ import annotations

import http.client
import signal
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fleetkit import agent, mosaic, write_roster
from helpers import wait_until
from mosaic.demo_agent import read_recording
from webkit import Web, demo_fleet, pid_of, running_web, start_web, stop_web

ALL = "0.0.0.0"  # noqa: S104 (the flag under test)
ROUTES = [
    ("GET", "/"),
    ("GET", "/?token=wrong-token-wrong-token-wrong-token-x"),
    ("GET", "/static/app.js"),
    ("GET", "/static/app.css"),
    ("GET", "/static/palette.css"),
    ("GET", "/static/index.html"),
    ("GET", "/static/no-such-file"),
    ("GET", "/static/../../pyproject.toml"),
    ("GET", "/no/such/route"),
    ("GET", "/api/status"),
    ("GET", "/api/events"),
    ("GET", "/api/events?since=0"),
    ("GET", "/api/events/stream"),
    ("GET", "/api/agents/sh1/screen"),
    ("POST", "/api/agents/d1/send"),
    ("POST", "/api/agents/sh1/start"),
    ("POST", "/api/agents/sh1/stop"),
    ("POST", "/api/agents/sh1/restart"),
    ("POST", "/api/agents/d1/approve"),
    ("POST", "/api/agents/d1/deny"),
    ("GET", "/api/agents/sh1/stop"),
    ("PUT", "/api/agents/sh1/stop"),
    ("DELETE", "/api/agents/sh1"),
]


def typed_nothing(web: Web, rec: Path) -> None:
    """The demo agent received nothing before a marker sent now, through the same door."""
    reply = web.request("POST", "/api/agents/d1/send", {"message": "marker"})
    assert reply.status == 200, reply.text
    assert reply.json()["results"][0]["outcome"] == "accepted"
    assert read_recording(str(rec)) == ["marker"]


def test_every_route_needs_the_token(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    rec = demo_fleet(env, tmp_path, "--think", "0")
    sh1 = pid_of(env, "sh1")
    with running_web(env, tmp_path) as web:
        wrong = [("cookie", f"mosaic_fleet_web_{web.port}=" + "x" * 43), ("bearer", "x" * 43)]
        for method, path in ROUTES:
            attempts: list[dict[str, str]] = [{}]
            attempts += [
                {"Cookie": v} if kind == "cookie" else {"Authorization": f"Bearer {v}"}
                for kind, v in wrong
            ]
            for headers in attempts:
                body = {"message": "should never arrive"} if method == "POST" else None
                reply = web.request(method, path, body, headers=headers, auth=None,
                                    origin=web.origin)  # fmt: skip
                assert reply.status == 401, (method, path, headers, reply.status, reply.text)
                assert "d1" not in reply.text and "sh1" not in reply.text
                assert reply.header("Set-Cookie") is None
                csp = reply.header("Content-Security-Policy") or ""
                assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        # The cookie of a dashboard on another port is not this one's.
        other = web.request("GET", "/api/status", auth=None,
                            headers={"Cookie": f"mosaic_fleet_web_1={web.token}"})  # fmt: skip
        assert other.status == 401
        assert pid_of(env, "sh1") == sh1
        typed_nothing(web, rec)


def test_the_printed_url_trades_the_token_for_a_cookie(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    with running_web(env, tmp_path) as web:
        login = web.request("GET", f"/?token={web.token}", auth=None)
        assert login.status == 303 and login.header("Location") == "/"
        cookie = login.header("Set-Cookie") or ""
        attrs = [a.strip().lower() for a in cookie.split(";")]
        assert attrs[0] == f"mosaic_fleet_web_{web.port}={web.token}".lower()
        assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
        assert "secure" not in attrs  # plain HTTP: a Secure cookie would never come back
        # The token travels in the query only on the way in; other parameters stay.
        kept = web.request("GET", f"/?a=1&token={web.token}", auth=None)
        assert kept.status == 303 and kept.header("Location") == "/?a=1"
        # Never a redirect to another host, whatever the path.
        away = web.request("GET", f"//evil.example/x?token={web.token}", auth=None)
        assert away.status == 303 and away.header("Location") == "/evil.example/x"
        # With the cookie already set, the token still leaves the address bar.
        again = web.request("GET", f"/?token={web.token}")
        assert again.status == 303 and again.header("Location") == "/"

        page = web.request("GET", "/", headers={"Cookie": cookie.split(";")[0]}, auth=None)
        assert page.status == 200 and b"<title>mosaic fleet</title>" in page.body
        assert "script-src 'self'" in (page.header("Content-Security-Policy") or "")
        assert page.header("X-Frame-Options") == "DENY"
        assert page.header("Referrer-Policy") == "no-referrer"
        doc = web.request("GET", "/api/status").json()
        assert [a["name"] for a in doc["agents"]] == ["d1", "sh1"]
        bearer = web.request("GET", "/api/status", auth="bearer")
        assert bearer.status == 200


def test_cross_origin_posts_are_refused_and_do_nothing(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    rec = demo_fleet(env, tmp_path, "--think", "0")
    sh1 = pid_of(env, "sh1")
    with running_web(env, tmp_path) as web:
        foreign = ["http://evil.example", f"http://evil.example:{web.port}", "null",
                   f"https://127.0.0.1:{web.port}", f"http://127.0.0.1:{web.port + 1}",
                   f"http://127.0.0.1.evil.example:{web.port}"]  # fmt: skip
        for origin in [*foreign, None]:
            for path, body in [
                ("/api/agents/sh1/stop", None),
                ("/api/agents/sh1/restart", None),
                ("/api/agents/d1/send", {"message": "should never arrive"}),
            ]:
                reply = web.request("POST", path, body, origin=origin)
                assert reply.status == 403, (origin, path, reply.status, reply.text)
        # A script with the bearer token sends no Origin; with a foreign one it is refused.
        for origin in foreign:
            reply = web.request("POST", "/api/agents/sh1/stop", auth="bearer", origin=origin)
            assert reply.status == 403, origin
        assert pid_of(env, "sh1") == sh1
        typed_nothing(web, rec)
        # The same request from the dashboard's own origin does act (so the 403s above
        # were the Origin check, not something else).
        assert web.request("POST", "/api/agents/sh1/stop").status == 200
        wait_until(lambda: agent(env, "sh1")["state"] == "stopped", what="sh1 stopped")
        bearer = web.request("POST", "/api/agents/sh1/start", auth="bearer", origin=None)
        assert bearer.status == 200, bearer.text
        wait_until(lambda: agent(env, "sh1")["state"] == "running", what="sh1 running")


def test_get_on_a_post_route_does_nothing(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    rec = demo_fleet(env, tmp_path, "--think", "0")
    sh1 = pid_of(env, "sh1")
    with running_web(env, tmp_path) as web:
        for action in ("stop", "restart", "start", "approve", "deny", "send"):
            for method in ("GET", "HEAD"):
                reply = web.request(method, f"/api/agents/d1/{action}?message=x")
                assert reply.status in (404, 405), (method, action, reply.status)
                reply = web.request(method, f"/api/agents/sh1/{action}")
                assert reply.status in (404, 405), (method, action, reply.status)
        assert pid_of(env, "sh1") == sh1
        typed_nothing(web, rec)


TRAVERSALS = [
    "/static/../../pyproject.toml",
    "/static/../server.py",
    "/static/%2e%2e/server.py",
    "/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
    "/static/..%2fserver.py",
    "/static/..%2f..%2f..%2fpyproject.toml",
    "/static/%2e%2e%2f%2e%2e%2fsgr.py",
    "/static/..%5cserver.py",
    "/static/.%2e/token.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/app.js/../../server.py",
    "/static/",
    "/static/.",
    "/static/__init__.py",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/static/%252e%252e/server.py",
    "/static/app.js%00.css",
]


def test_static_files_cannot_be_escaped(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    with running_web(env, tmp_path) as web:
        app_js = web.request("GET", "/static/app.js")
        assert app_js.status == 200 and b"textContent" in app_js.body
        assert (app_js.header("Content-Type") or "").startswith("text/javascript")
        for path in TRAVERSALS:
            reply = web.request("GET", path)
            assert reply.status == 404, (path, reply.status, reply.body[:200])
            for leak in (b"[project]", b"root:", b"def ", b"import "):
                assert leak not in reply.body, path


def listening(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_listens_on_loopback_unless_told(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    with running_web(env, tmp_path) as web:
        assert web.host == "127.0.0.1"
        assert listening(web.port) == {"0100007F"}  # 127.0.0.1, little-endian hex
        assert "warning" not in web.stderr()
    with running_web(env, tmp_path, "--host", ALL) as web:
        assert listening(web.port) == {"00000000"}
        err = web.stderr()
        assert "warning" in err and ALL in err and "not loopback" in err
        # The printed URL names this machine, and that origin is the dashboard's own; so
        # is the loopback address the connection arrives at. (405: a GET-only route.)
        for own in (web.origin, f"http://127.0.0.1:{web.port}"):
            reply = web.request("POST", "/api/status", origin=own)
            assert reply.status == 405, (own, reply.status)
        refused = web.request("POST", "/api/agents/sh1/stop", origin="http://evil.example")
        assert refused.status == 403


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_https_with_a_self_signed_certificate(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    cert, key = self_signed(tmp_path)
    web = start_web(env, tmp_path, "--cert", str(cert), "--key", str(key))
    try:
        assert web.url.startswith("https://127.0.0.1:")
        web.ssl_context = ssl.create_default_context(cafile=str(cert))
        login = web.request("GET", f"/?token={web.token}", auth=None)
        assert login.status == 303
        attrs = [a.strip().lower() for a in (login.header("Set-Cookie") or "").split(";")]
        assert "secure" in attrs and "httponly" in attrs
        assert web.request("GET", "/api/status").json()["agents"][0]["name"] == "d1"
        # Plain HTTP on the same port gets no page.
        plain = Web(web.proc, web.url, "http", web.host, web.port, web.token, web.err)
        try:
            status = plain.request("GET", "/api/status", timeout=5).status
        except (OSError, http.client.HTTPException):
            status = 0
        assert status != 200
        # A client that does not trust the certificate refuses it.
        web.ssl_context = ssl.create_default_context()
        with pytest.raises(ssl.SSLError):
            web.request("GET", "/api/status")
    finally:
        assert stop_web(web) == 0


def test_the_token_file(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    path = Path(env["MOSAIC_HOME"]) / "fleet" / "run" / "web.token"
    assert not path.exists()
    with running_web(env, tmp_path) as first:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, oct(mode)
        assert path.read_text().strip() == first.token
    with running_web(env, tmp_path) as second:
        assert second.token == first.token  # a restart keeps the URL working
    path.write_text("not a token\n")
    with running_web(env, tmp_path) as third:
        assert third.token != first.token and path.read_text().strip() == third.token


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_ends_it_cleanly_with_a_stream_open(
    fleet_env: dict[str, str], tmp_path: Path, signum: int
) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    web = start_web(env, tmp_path)
    conn = web.connection()
    conn.request("GET", "/api/events/stream?screen=d1", headers={"Cookie": web.cookie})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.readline().startswith(b"id: ")
    code = stop_web(web, signum)
    conn.close()
    assert code == 0 and "Traceback" not in web.stderr(), web.stderr()


def test_open_hands_the_url_to_the_browser(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(fleet_env)
    demo_fleet(env, tmp_path, "--think", "0")
    opened = tmp_path / "opened"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" > {opened}\n')
    browser.chmod(0o755)
    env["BROWSER"] = str(browser)
    with running_web(env, tmp_path, "--open") as web:
        wait_until(lambda: opened.exists() and opened.read_text().strip(), what="the browser")
        assert opened.read_text().strip() == web.url


def test_bad_invocations(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    demo_fleet(env, tmp_path, "--think", "0")
    cert, _ = self_signed(tmp_path)
    res = mosaic(env, "web", "--cert", str(cert))
    assert res.code == 2 and "--cert and --key" in res.err and "Traceback" not in res.err
    with running_web(env, tmp_path) as web:
        res = mosaic(env, "web", "--port", str(web.port))
        assert res.code == 1 and f"cannot listen on 127.0.0.1:{web.port}" in res.err
        assert "Traceback" not in res.err
    roster = Path(env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"
    roster.write_text("version: 1\nagents:\n  - name: d1\n    runtime: nope\n")
    res = mosaic(env, "web", "--port", "0")
    assert res.code == 2 and f"{roster}:4:" in res.err and "Traceback" not in res.err


def test_other_commands_do_not_load_the_web_server(fleet_env: dict[str, str]) -> None:
    """aiohttp is imported by `web` alone: `--version`, `status` and even `--help` (which
    lists every command) never pay for it."""
    env = fleet_env
    write_roster(env, "version: 1\nagents: []\n")
    for args in (["--version"], ["fleet", "status", "--json"], ["fleet", "status"],
                 ["fleet", "--help"], ["fleet", "web", "--help"]):  # fmt: skip
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mosaic", *args],
                              env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        modules = {ln.split("|")[-1].strip() for ln in proc.stderr.splitlines() if "|" in ln}
        assert "aiohttp" not in modules and "mosaic.web.server" not in modules, args
        assert "mosaic" in modules or "mosaic.cli" in modules  # importtime did report
