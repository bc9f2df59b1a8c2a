"""The watcher answering `status --json`
(docs/architecture.md, "status served by the watcher").

A status command pays for an interpreter, then ~100 ms of imports before its two tmux round
trips; the watcher has imported everything already. So the watcher listens on
`Paths.status_socket` and, for each request, computes the document FRESH with the very
function the command would have run (`hosts.status.document`), for the caller's
environment: nothing is cached between requests, so a `stop` followed at once by `status`
tells the truth. The client (`statusclient.py`) prints the answer; whenever the watcher
cannot answer exactly as the caller's own process would, it declines and the caller builds
the document itself:

- another mosaic: the caller's code stamp (version, interpreter, every module's mtime and
  size) differs from the one this watcher started with;
- another home or roster path;
- another value of a variable the document reads from the process environment itself
  rather than from the environment it is given (`MUST_MATCH`): what tmux and systemctl see,
  programs found on PATH, `~`, `$SHELL`, the locale, local time;
- another tmux socket than the one this watcher watches.

The roster is read on every request, with the caller's environment, so an edited roster
(or the roster's own `$VARS`) is never a stale answer. Errors are answered as the command
would print them (message, exit code). Anything unexpected declines.

A fleet with hosts is served too (docs/hosts.md, "Scaling"): its hosts are asked over SSH
from here, each call with the caller's whole environment (its agent socket, its PATH's
`ssh`, whatever its ssh configuration reads), through the same control masters as the
caller's own calls. Asking takes as long as the slowest host, so the watcher first says it
is working on it (`statusclient.WORKING`), and the client then waits as long as the command
itself would have.

Each client is served on its own thread, at most `CLIENTS` at once (past that a client's
connection is closed at once and it answers itself), so a slow host never holds up another
caller. A client has `REQUEST_S` to send at most `statusclient.MAX_REQUEST` bytes, and only
a peer of the watcher's own uid is served (SO_PEERCRED; the socket is 0600 in the 0700 run
directory besides). The tick never waits for these threads.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mosaic.base.fs import ensure_dir
from mosaic.config.load import load
from mosaic.config.paths import Paths
from mosaic.config.roster import effective_socket
from mosaic.errors import MosaicError
from mosaic.watch import statusclient
from mosaic.watch.statusclient import encode_decline, encode_reply

REQUEST_S = 1.0  # a client has this long, from connecting, to send its whole request
REPLY_S = 2.0  # and this long to take the answer
BACKLOG = 16
CLIENTS = 8  # served at once

# Read by the document from the process environment, not from the `env` it is handed:
# tmux's socket directory and locale, the user manager systemctl reaches (and the language
# of its messages), programs found on PATH and `$SHELL` (the `shell` runtime), `~` expanded
# at load, local time (the restart line), the systemd unit directory. The watcher's own
# values must equal the caller's.
MUST_MATCH = (
    "PATH", "HOME", "SHELL", "TMUX_TMPDIR", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS",
    "XDG_CONFIG_HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ",
)  # fmt: skip

PeerUid = Callable[[socket.socket], int]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Own:
    """What this watcher's answers hold for."""

    stamp: bytes
    home: str
    roster: str
    socket: str
    env: Mapping[str, str]


def refusal(
    own: Own, stamp: bytes, home: str, roster: str, env: Mapping[str, str]
) -> str | None:
    """Why this watcher cannot answer exactly as the caller's own process would (checked
    before the roster is read); None when it may."""
    if stamp != own.stamp:
        return "another mosaic (version or code)"
    if (home, roster) != (own.home, own.roster):
        return "another home or roster"
    for key in MUST_MATCH:
        if env.get(key) != own.env.get(key):
            return f"${key} differs"
    return None


def _nothing() -> None:
    pass


def answer(
    paths: Paths, own: Own, request: bytes, working: Callable[[], None] = _nothing
) -> bytes:
    """The reply to one request: the document (or the error) the caller would print, or a
    decline. `working` is called before hosts are asked (a wait the client should take)."""
    try:
        stamp, home, roster_path, agent, env = statusclient.decode_request(request)
    except ValueError:
        return encode_decline("malformed request")
    why = refusal(own, stamp, home, roster_path, env)
    if why is not None:
        return encode_decline(why)
    from mosaic.cli.render import json_document
    from mosaic.hosts.status import document

    try:
        # The command's first step, with its environment: its error is the command's.
        roster = load(paths.roster, env=env, cache_dir=paths.run)
    except MosaicError as exc:
        return encode_reply(int(exc.exit_code), exc.message + "\n", "")
    try:
        if effective_socket(roster, env) != own.socket:
            return encode_decline("another tmux socket")
    except MosaicError:
        return encode_decline("bad tmux socket setting")  # the command says it, in its order
    if roster.hosts:
        working()
    try:
        doc, errors = document(paths, agent, env=env, roster=roster)
    except MosaicError as exc:
        return encode_reply(int(exc.exit_code), exc.message + "\n", "")
    return encode_reply(0, "".join(m + "\n" for m in errors), json_document(doc))


class StatusServer:
    def __init__(self, paths: Paths, socket_name: str, log: Log,
                 peer_uid: PeerUid = statusclient.peer_uid) -> None:  # fmt: skip
        self.paths = paths
        self.log = log
        self.peer_uid = peer_uid
        self.own = Own(statusclient.stamp(), str(paths.home), str(paths.roster), socket_name,
                       os.environ)  # fmt: skip
        self.closing = False
        self.slots = threading.BoundedSemaphore(CLIENTS)
        self.listener: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.inode: int | None = None

    def start(self) -> None:
        path = self.paths.status_socket
        self.listener = _listen(path)
        self.inode = path.stat().st_ino
        self.thread = threading.Thread(target=self._serve, name="status-server", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop answering and remove the socket (unless another watcher's replaced it)."""
        self.closing = True
        listener, self.listener = self.listener, None
        if listener is None:
            return
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the thread out of accept()
        if self.thread is not None:
            self.thread.join(timeout=1.0)
        listener.close()
        path = self.paths.status_socket
        with contextlib.suppress(OSError):
            if path.stat().st_ino == self.inode:
                path.unlink()

    def _serve(self) -> None:
        listener = self.listener
        assert listener is not None
        while not self.closing:
            try:
                conn, _ = listener.accept()
            except OSError as exc:
                if self.closing:
                    return
                self.log(f"status: accept: {exc}")
                time.sleep(0.1)  # e.g. out of descriptors: do not spin
                continue
            if not self.slots.acquire(blocking=False):
                # Closed unread: the client's exchange fails at once and it answers itself
                # (a decline sent here would be lost with the request left unread).
                conn.close()
                continue
            threading.Thread(target=self._client, args=(conn,), name="status-client",
                             daemon=True).start()  # fmt: skip

    def _client(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._handle(conn)
        except Exception as exc:  # no client, and no bug it meets, may end the server
            self.log(f"status: {type(exc).__name__}: {exc}")
        finally:
            self.slots.release()

    def _handle(self, conn: socket.socket) -> None:
        uid = self.peer_uid(conn)
        if uid != os.getuid():
            self.log(f"status: refused a client of uid {uid}")
            return
        request = statusclient.receive_all(conn, time.monotonic() + REQUEST_S,
                                           statusclient.MAX_REQUEST)
        if request is None:
            self.log("status: dropped a request (too large, or not sent in time)")
            return
        conn.settimeout(REPLY_S)

        def working() -> None:
            conn.sendall(statusclient.WORKING)

        with contextlib.suppress(OSError):  # the client gave up: its own path answers
            conn.sendall(answer(self.paths, self.own, request, working))


def _listen(path: Path) -> socket.socket:
    """A listening socket at `path`, 0600, put in place by rename: a stale socket left by
    a killed watcher is replaced whole, never seen half-made."""
    ensure_dir(path.parent)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        address, fd = statusclient.unix_address(str(temp))
        try:
            sock.bind(address)
        finally:
            if fd is not None:
                os.close(fd)
        os.chmod(temp, 0o600)
        sock.listen(BACKLOG)
        os.rename(temp, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return sock


@contextlib.contextmanager
def serving(paths: Paths, socket_name: str, log: Log) -> Iterator[StatusServer | None]:
    """Serve status while the block runs; a watcher that cannot serve still watches."""
    server: StatusServer | None = None
    try:
        server = StatusServer(paths, socket_name, log)
        server.start()
    except OSError as exc:
        log(f"status: not served: {exc}")
        server = None
    try:
        yield server
    finally:
        if server is not None:
            server.close()
