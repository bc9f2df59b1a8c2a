"""`mosaic fleet web`: the dashboard's HTTP server (aiohttp), its routes and its guard
(docs/reference.md, "web").

    GET  /                              the page (with ?token=T: trade it for the cookie)
    GET  /static/NAME                   the page's files, from a fixed list in the package
    GET  /api/status                    `status --json`
    GET  /api/events                    `events --json` lines (?since, agent, type, last)
    GET  /api/events/stream             Server-Sent Events: hello, status, event, screen
    GET  /api/agents/NAME/screen        the screen, as text and as HTML
    POST /api/agents/NAME/send          {"message", "queue"?, "timeout"?} → `send --json`
    POST /api/agents/NAME/ACTION        start, stop, restart; approve, deny (`approve --json`)

Every request passes `_guard` first: the token (cookie or bearer) or 401, for every route
and every file; a POST with an Origin that is not the dashboard's own (or, from a browser,
none) is 403 before any handler runs. Static files are a dict built at start-up from the
package's data, never a path joined from the request, so nothing outside it can be named.
Every response carries the security headers of `security.HEADERS` (a strict CSP).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from yarl import URL

from mosaic import __version__
from mosaic.config.names import LOCAL_HOST
from mosaic.config.paths import Paths
from mosaic.errors import (
    ConfigError,
    MosaicError,
    OperationFailed,
    UnknownAgentError,
    UsageError,
)
from mosaic.hosts.eventmerge import cursor_text, parse_cursor
from mosaic.web import actions, security, sgr
from mosaic.web import token as tokens
from mosaic.web.hub import Hub, Subscriber

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
COOKIE_MAX_AGE_S = 30 * 24 * 3600
KEEPALIVE_S = 15.0
GONE_CHECK_S = 0.5  # how soon a stream notices its page left
REPLAY_MAX = 1000
MAX_BODY = 1 << 20  # a 64 KiB message, JSON-escaped, fits many times over
MAX_SEND_TIMEOUT_S = 600.0
WORKERS = 8
STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Options:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    cert: Path | None = None
    key: Path | None = None
    open_browser: bool = False


def static_files() -> dict[str, tuple[bytes, str]]:
    """name → (content, content type): the only files the server will ever send."""
    folder = resources.files("mosaic.web") / "static"
    out = {name: (folder.joinpath(name).read_bytes(), ctype)
           for name, ctype in STATIC_FILES.items()}  # fmt: skip
    out["palette.css"] = (sgr.palette_css().encode(), "text/css")
    return out


class Dashboard:
    def __init__(self, paths: Paths, token: str, origins: security.Origins, secure: bool,
                 hub: Hub) -> None:  # fmt: skip
        self.paths = paths
        self.token = token
        self.origins = origins
        self.secure = secure
        self.hub = hub
        self.cookie = security.cookie_name(origins.port)
        self.files = static_files()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.on_response_prepare.append(_headers)
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/status", self.status)
        app.router.add_get("/api/events", self.events)
        app.router.add_get("/api/events/stream", self.stream)
        app.router.add_get("/api/agents/{name}/screen", self.screen)
        app.router.add_post("/api/agents/{name}/send", self.send)
        app.router.add_post("/api/agents/{name}/{action}", self.act)
        return app

    # --- the guard -----------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        offered = request.query.get("token")
        if request.method == "GET" and tokens.matches(offered, self.token):
            return self._login(request)
        via_cookie = tokens.matches(request.cookies.get(self.cookie), self.token)
        via_bearer = not via_cookie and tokens.matches(
            security.bearer(request.headers.get("Authorization")), self.token
        )
        if not (via_cookie or via_bearer):
            return _text(401, "401 Unauthorized: open the URL that `mosaic fleet web` printed "
                              "(it carries the access token)")  # fmt: skip
        if request.method not in security.SAFE_METHODS:
            sockname = request.transport.get_extra_info("sockname") if request.transport else None
            local = sockname[0] if isinstance(sockname, tuple) else None
            if not security.post_allowed(via_cookie, request.headers.get("Origin"),
                                         self.origins, local):  # fmt: skip
                return _text(403, "403 Forbidden: this request did not come from the dashboard")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return _text(exc.status, f"{exc.status} {exc.reason}")

    def _login(self, request: web.Request) -> web.StreamResponse:
        """The printed URL's token becomes the session cookie; the browser goes on to the
        same page without the token in its address bar or history."""
        query = [(k, v) for k, v in request.query.items() if k != "token"]
        # Always a path on this server: `//host` would send the browser elsewhere.
        target = URL.build(path="/" + request.path.lstrip("/"), query=query)
        resp = web.Response(status=303, headers={"Location": str(target)})
        resp.set_cookie(self.cookie, self.token, max_age=COOKIE_MAX_AGE_S, path="/",
                        secure=self.secure, httponly=True, samesite="Strict")  # fmt: skip
        return resp

    # --- pages ---------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        return self._file(request.match_info["name"])

    def _file(self, name: str) -> web.StreamResponse:
        found = self.files.get(name)
        if found is None:
            return _text(404, "404 Not Found")
        body, ctype = found
        return web.Response(body=body, content_type=ctype, charset="utf-8")

    # --- the API -------------------------------------------------------------------------

    async def status(self, request: web.Request) -> web.StreamResponse:
        return await self._call(actions.status_document, self.paths)

    async def events(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        last = q.get("last")
        if last is not None and not last.isdigit():
            return _error(400, "last: give a number of events")
        try:
            lines = await _thread(
                actions.event_lines, self.paths, q.get("since"), q.get("agent"),
                tuple(q.getall("type", [])), int(last) if last else None,
            )  # fmt: skip
        except MosaicError as exc:
            return _failure(exc)
        body = "".join(line + "\n" for line in lines)
        return web.Response(text=body, content_type="application/jsonl", charset="utf-8")

    async def screen(self, request: web.Request) -> web.StreamResponse:
        return await self._call(actions.screen, self.paths, request.match_info["name"])

    async def send(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if request.content_type != "application/json":
            return _error(415, "send takes a JSON body: {\"message\": \"...\"}")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return _error(400, "give {\"message\": \"...\"} (and optionally \"queue\": true)")
        message: str = body["message"]
        queue = body.get("queue", False)
        timeout = body.get("timeout", _default_send_timeout())
        if not isinstance(queue, bool):
            return _error(400, "queue: true or false")
        if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                or not 0 < timeout <= MAX_SEND_TIMEOUT_S):  # fmt: skip
            return _error(400, f"timeout: seconds, more than 0 and at most {MAX_SEND_TIMEOUT_S:g}")
        if queue:
            return await self._call(actions.queue, self.paths, name, message)
        return await self._call(actions.send, self.paths, name, message, float(timeout))

    async def act(self, request: web.Request) -> web.StreamResponse:
        name, action = request.match_info["name"], request.match_info["action"]
        if action in ("approve", "deny"):
            return await self._call(actions.approve, self.paths, name, action == "deny")
        for known in actions.LIFECYCLE:
            if action == known:
                return await self._call(actions.lifecycle, self.paths, name, known)
        return _text(404, "404 Not Found")

    async def _call(self, fn: Callable[..., dict[str, Any]], *args: Any) -> web.StreamResponse:
        from mosaic.cli.render import json_document

        try:
            doc = await _thread(fn, *args)
        except MosaicError as exc:
            return _failure(exc)
        return web.Response(text=json_document(doc), content_type="application/json",
                            charset="utf-8")  # fmt: skip

    # --- the stream ----------------------------------------------------------------------

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events. `?screen=AGENT`: also that agent's screen, whenever it
        changes. Events resume after `Last-Event-ID` (or `?since=SEQ`), read back from the
        database; without either, they start now."""
        screen = request.query.get("screen") or None
        if screen is not None:
            try:
                await _thread(actions.check_agent, self.paths, screen)
            except MosaicError as exc:
                return _failure(exc)
        text = request.headers.get("Last-Event-ID") or request.query.get("since")
        try:
            resume = parse_cursor(text) if text is not None else None
        except ValueError:
            return _error(400, "since: give an event seq, or HOST:SEQ pairs (local:12,gpu1:3)")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "X-Accel-Buffering": "no"})  # fmt: skip
        await resp.prepare(request)
        sub = self.hub.subscribe(screen)
        try:
            await self._serve_stream(resp, sub, resume, request.transport)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.unsubscribe(sub)
        return resp

    async def _serve_stream(
        self,
        resp: web.StreamResponse,
        sub: Subscriber,
        resume: dict[str, int] | None,
        transport: asyncio.Transport | None,
    ) -> None:
        # Where this page is in every machine's log: every later event reaches `sub.queue`;
        # one at or before its machine's mark is one the page has (or was before it came).
        marks = self.hub.position()
        hello = {"version": __version__, "queue": actions.QUEUE_AVAILABLE}
        await resp.write(_sse("hello", json.dumps(hello),
                              cursor_text(marks if resume is None else resume)))  # fmt: skip
        if self.hub.last_status is not None:
            await resp.write(_sse("status", self.hub.last_status))
        missed = {m: seq for m, seq in (resume or {}).items()
                  if m != LOCAL_HOST or seq < marks[LOCAL_HOST]}  # fmt: skip
        if missed:
            # Read back from each machine's log (a host's over SSH), as `events` would.
            lines = await _thread(actions.replay_lines, self.paths, missed, REPLAY_MAX)
            for machine, seq, line in lines:
                marks[machine] = max(marks.get(machine, 0), seq)
                await resp.write(_sse("event", line, cursor_text(marks)))
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while True:
            try:
                message = await asyncio.wait_for(sub.queue.get(), GONE_CHECK_S)
            except TimeoutError:
                # A page that left stops what it watched now (a host's screen poller), not
                # at the next write that fails.
                if transport is None or transport.is_closing():
                    return
                if loop.time() - quiet_since >= KEEPALIVE_S:
                    await resp.write(b": keepalive\n\n")
                    quiet_since = loop.time()
                continue
            quiet_since = loop.time()
            if message is None:
                return
            if message.kind == "event" and message.seq is not None:
                machine = message.host or LOCAL_HOST
                if message.seq <= marks.get(machine, -1):
                    continue
                marks[machine] = message.seq
                await resp.write(_sse("event", message.data, cursor_text(marks)))
                continue
            await resp.write(_sse(message.kind, message.data))


def _sse(kind: str, data: str, event_id: str | None = None) -> bytes:
    """One event; `data` is JSON, so it holds no raw line feed to split it. `event_id`:
    where the page is in every machine's log (`eventmerge.cursor_text`), which a
    reconnecting page sends back as `Last-Event-ID`."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(security.HEADERS)


async def _thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _default_send_timeout() -> float:
    from mosaic.send.judge import DEFAULT_TIMEOUT_S

    return DEFAULT_TIMEOUT_S


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


def _error(status: int, message: str) -> web.Response:
    body = json.dumps({"error": message}, ensure_ascii=False) + "\n"
    return web.Response(status=status, text=body, content_type="application/json")


def _failure(exc: MosaicError) -> web.Response:
    """A user-facing error as JSON, with the status that says whose it is."""
    from mosaic.hosts.remote import HostError

    if isinstance(exc, UnknownAgentError):
        status = 404
    elif isinstance(exc, HostError):
        status = 502  # the agent's host could not do it (unreachable, or its own error)
    elif isinstance(exc, UsageError):
        status = 400
    elif isinstance(exc, ConfigError):
        status = 500  # the roster or environment is wrong: the server's problem
    elif isinstance(exc, OperationFailed):
        status = 409
    else:
        status = 500
    return _error(status, exc.message)


# --- running it ------------------------------------------------------------------------------


def machine_names() -> list[str]:
    """This machine's names and addresses, for the origins of a wildcard listener."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            for info in socket.getaddrinfo(name, None):
                names.add(str(info[4][0]))
        except OSError:
            continue
    return sorted(n for n in names if n)


def ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--cert {cert} --key {key}: {exc}") from None
    return ctx


def serve(paths: Paths, options: Options) -> int:
    """Serve until SIGINT/SIGTERM; 0 then."""
    from mosaic.fleet import open_fleet

    open_fleet(paths)  # a broken roster is an error now, not a blank page later
    ctx = ssl_context(options.cert, options.key) if options.cert and options.key else None
    token = tokens.load_or_create(paths.web_token)
    if not security.is_loopback(options.host):
        print(f"mosaic fleet web: warning: listening on {options.host}, not loopback: anyone "
              f"who can reach port {options.port} and learns the token can type into your "
              f"agents" + ("" if ctx else "; add --cert/--key to serve HTTPS"),
              file=sys.stderr, flush=True)  # fmt: skip
    return asyncio.run(_serve(paths, options, token, ctx))


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server is built (its origins need the port
    that `--port 0` picks)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)  # fmt: skip
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    try:
        return socket.create_server(address, family=family)
    except OSError as exc:
        raise OperationFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


async def _serve(paths: Paths, options: Options, token: str, ctx: ssl.SSLContext | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.set_default_executor(ThreadPoolExecutor(WORKERS, thread_name_prefix="mosaic-web"))
    sock = listen(options.host, options.port)
    port = int(sock.getsockname()[1])
    scheme = "https" if ctx else "http"
    wildcard = options.host in security.WILDCARDS
    origins = security.own_origins(scheme, options.host, port,
                                   machine_names() if wildcard else ())  # fmt: skip
    hub = Hub(paths, loop)
    dashboard = Dashboard(paths, token, origins, ctx is not None, hub)
    runner = web.AppRunner(dashboard.app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=ctx, shutdown_timeout=1.0).start()
    hub.start()
    url = f"{security.origin(scheme, socket.gethostname() if wildcard else options.host, port)}"
    url += f"/?token={token}"
    print(f"mosaic fleet web: the dashboard of {paths.home} (Ctrl-C stops it); open:",
          file=sys.stderr, flush=True)  # fmt: skip
    print(url, flush=True)
    if options.open_browser:
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        await stop.wait()
    finally:
        hub.stop()
        await runner.cleanup()
    return 0
