"""Helpers for the web dashboard's tests: run `mosaic fleet web` as a user would (a real
process on a real port) and talk plain HTTP(S) to it, with no client cleverness in the way
(http.client sends the path exactly as given and follows no redirect)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from helpers import MOSAIC, deadline

URL = re.compile(r"^(https?)://([^/]+)/\?token=([A-Za-z0-9_-]+)$")
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Web:
    proc: subprocess.Popen[bytes]
    url: str  # as printed: the token included
    scheme: str
    host: str
    port: int
    token: str
    err: Path
    ssl_context: ssl.SSLContext | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def cookie(self) -> str:
        return f"mosaic_fleet_web_{self.port}={self.token}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: str | None = "cookie",
        origin: str | None = "own",
        timeout: float = 60.0,
    ) -> Reply:
        """`auth`: "cookie", "bearer" or None; `origin`: "own", None (no header) or a value.
        A POST from a browser carries its Origin, so "own" is the default."""
        sent: dict[str, str] = dict(headers or {})
        if auth == "cookie":
            sent["Cookie"] = self.cookie
        elif auth == "bearer":
            sent["Authorization"] = f"Bearer {self.token}"
        if origin == "own" and method != "GET":
            sent["Origin"] = self.origin
        elif origin not in (None, "own"):
            sent["Origin"] = origin
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            return Reply(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()

    def connection(self, timeout: float = 60.0) -> http.client.HTTPConnection:
        # A name (a wildcard listener prints the machine's): reach it through loopback.
        host = self.host if re.fullmatch(r"[0-9.]+", self.host) else "127.0.0.1"
        if self.scheme == "https":
            return http.client.HTTPSConnection(host, self.port, timeout=timeout,
                                               context=self.ssl_context)  # fmt: skip
        return http.client.HTTPConnection(host, self.port, timeout=timeout)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def start_web(env: Mapping[str, str], tmp: Path, *args: str, timeout: float = 30.0) -> Web:
    """`mosaic fleet web --port 0 ARGS`, once it printed its URL."""
    err = tmp / f"web-{time.monotonic_ns()}.err"
    with err.open("wb") as err_file:
        proc = subprocess.Popen(
            [*MOSAIC, "fleet", "web", "--port", "0", *args], env=dict(env),
            stdout=subprocess.PIPE, stderr=err_file, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert proc.stdout is not None
    end = time.monotonic() + deadline(timeout)
    line = b""
    while not line.endswith(b"\n"):
        left = end - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
        if not ready:
            proc.kill()
            raise AssertionError(f"mosaic fleet web printed no URL in {timeout}s:\n"
                                 f"{err.read_text(errors='replace')}")  # fmt: skip
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            proc.wait()
            raise AssertionError(f"mosaic fleet web exited {proc.returncode}:\n"
                                 f"{err.read_text(errors='replace')}")  # fmt: skip
        line += chunk
    url = line.decode().strip()
    m = URL.match(url)
    assert m, f"not a dashboard URL: {url!r}"
    parts = urlsplit(url)
    assert parts.port is not None and parts.hostname is not None
    return Web(proc, url, m.group(1), parts.hostname, parts.port, m.group(3), err)


def stop_web(web: Web, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
    if web.proc.poll() is None:
        web.proc.send_signal(signum)
    try:
        return web.proc.wait(timeout=deadline(timeout))
    finally:
        if web.proc.poll() is None:
            web.proc.kill()
            web.proc.wait()
        if web.proc.stdout is not None:
            web.proc.stdout.close()


@contextlib.contextmanager
def running_web(env: Mapping[str, str], tmp: Path, *args: str) -> Iterator[Web]:
    web = start_web(env, tmp, *args)
    try:
        yield web
    finally:
        code = stop_web(web)
        assert "Traceback" not in web.stderr(), web.stderr()
        assert code == 0, f"mosaic fleet web exited {code}:\n{web.stderr()}"


def demo_fleet(env: dict[str, str], tmp: Path, *demo_args: str, shell: bool = True) -> Path:
    """A started fleet: the demo agent d1 with DEMO_ARGS (recording what it receives, into
    the file returned) and, with `shell`, a bash agent sh1; back once d1 is idle."""
    from fleetkit import agent, ok, write_roster
    from helpers import wait_until

    rec = tmp / "d1.jsonl"
    args = json.dumps([*demo_args, "--record", str(rec)])
    sh1 = "  - name: sh1\n    runtime: shell\n" if shell else ""
    write_roster(env, f"version: 1\nagents:\n  - name: d1\n    runtime: demo\n"
                      f"    args: {args}\n{sh1}")  # fmt: skip
    ok(env, "start")
    wait_until(lambda: agent(env, "d1")["activity"] == "idle", what="d1 idle")
    return rec


def pid_of(env: dict[str, str], name: str) -> int | None:
    """The agent's pid as status reports it."""
    from fleetkit import agent

    pid = agent(env, name)["pid"]
    return int(pid) if pid else None


class Stream:
    """An open `/api/events/stream`, read one Server-Sent Event at a time."""

    def __init__(self, web: Web, query: str = "", headers: Mapping[str, str] | None = None,
                 timeout: float = 30.0) -> None:  # fmt: skip
        self.conn = web.connection(timeout)
        self.conn.request("GET", f"/api/events/stream{query}",
                          headers={"Cookie": web.cookie, **(headers or {})})  # fmt: skip
        self.resp = self.conn.getresponse()
        self.seen: list[dict[str, str]] = []

    def next(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        while True:
            line = self.resp.readline()
            if not line:
                raise AssertionError("the stream ended")
            text = line.decode("utf-8").rstrip("\n")
            if text == "":
                if fields:
                    self.seen.append(fields)
                    return fields
                continue
            if text.startswith(":"):
                continue
            key, _, value = text.partition(": ")
            fields[key] = value

    def until(self, predicate: Callable[[dict[str, str]], bool], what: str,
              timeout: float = 20.0) -> dict[str, str]:  # fmt: skip
        end = time.monotonic() + deadline(timeout)
        while time.monotonic() < end:
            event = self.next()
            if predicate(event):
                return event
        raise AssertionError(f"no {what} on the stream within {timeout}s")

    def close(self) -> None:
        self.conn.close()
