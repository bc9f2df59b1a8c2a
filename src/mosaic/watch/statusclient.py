"""Asking the running watcher for `status --json`, and the wire format both ends share
(docs/architecture.md, "status served by the watcher").

`cli/quickstatus.py` calls `ask` before it imports anything of the status machinery; when
the watcher answers, that is all the command costs. So this module imports only `os`,
`sys`, `time` and the C half of the socket module, `_socket`: `socket` itself pulls in
enum, selectors and re, and `json` pulls in re (together 11-16 ms measured on the loaded
2-core test machine: a sixth to a quarter of the whole served answer). The wire format is
therefore plain bytes:

    request  NUL-separated: PROTOCOL, stamp, home, roster, agent ("" none, "=NAME" one),
             then every `KEY=VALUE` of the caller's environment (as `os.environb` has it)
    reply    b"A CODE LEN\\n" + stderr (LEN bytes) + stdout   -- the answer
             b"D REASON"                                       -- declined: answer yourself
             either may follow WORKING (b"W\\n"): the watcher is asking hosts, and the
             client waits up to WORKING_S instead of DEADLINE_S

The caller's whole environment travels because the document is computed for it: the roster's
`$VARS`, `$MOSAIC_TMUX_SOCKET` and `$MOSAIC_FLEET_SUPERVISOR` are read from it, exactly as the
in-process path reads them (`watch/serve.py` decides what must also equal the watcher's own).
It goes only to a peer of the caller's own uid (SO_PEERCRED), over a socket in the 0700 run
directory.
"""

from __future__ import annotations

import _socket
import os
import sys
import time

from mosaic import __version__

PROTOCOL = b"mosaic-status/1"
MAX_REQUEST = 256 * 1024  # an environment larger than this is not sent: answered in-process
MAX_REPLY = 64 * 1024 * 1024
DEADLINE_S = 2.0  # for the whole exchange; after it the caller answers itself
# ...unless the watcher said it is asking hosts: then this long, the most that hosts' own
# call bounds let asking them take (`hosts.remote.QUICK_S` per host, in up to two waves).
WORKING = b"W\n"
WORKING_S = 40.0
# bind()/connect() take at most this many bytes of path (sun_path, with its NUL).
_SUN_PATH = 108

# The installed package (src/mosaic), whose modules `stamp` lists.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stamp(package: str | None = None) -> bytes:
    """Which code a process runs, as far as its files tell: the version, the interpreter,
    where the package lives, and the mtime and size of each of its modules (the rule of
    `config/rostercache.py`'s stamp, over the whole package). Two processes with equal
    stamps build equal documents from equal inputs. Raises OSError when the package cannot
    be listed (a zipped install): then nothing is asked."""
    root = _PACKAGE if package is None else package
    head = [__version__, os.path.realpath(sys.executable), f"{sys.hexversion:x}", root]
    entries = []
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as found:
            for entry in found:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    relative = entry.path[len(root) + 1 :]
                    entries.append(f"{relative} {st.st_mtime_ns} {st.st_size}")
    entries.sort()
    return "\n".join(head + entries).encode("utf-8", "surrogateescape")


def unix_address(path: str) -> tuple[str, int | None]:
    """An address for `path` that fits sun_path: the path itself, or, when it is too long,
    the same file reached through an open descriptor of its directory (which the caller
    closes once bound or connected)."""
    if len(os.fsencode(path)) < _SUN_PATH:
        return path, None
    directory, name = os.path.split(path)
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{name}", fd


def peer_uid(sock: _socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED: pid, uid, gid as C ints)."""
    cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return int.from_bytes(cred[4:8], sys.byteorder)


def encode_request(
    code_stamp: bytes, home: str, roster: str, agent: str | None, environ: dict[bytes, bytes]
) -> bytes:
    fields = [PROTOCOL, code_stamp, os.fsencode(home), os.fsencode(roster)]
    fields.append(b"" if agent is None else b"=" + os.fsencode(agent))
    fields += [key + b"=" + value for key, value in environ.items()]
    return b"\0".join(fields)


def decode_request(
    data: bytes,
) -> tuple[bytes, str, str, str | None, dict[str, str]]:
    """(stamp, home, roster, agent, environment) of a request; ValueError if malformed."""
    fields = data.split(b"\0")
    if len(fields) < 5 or fields[0] != PROTOCOL:
        raise ValueError("not a status request")
    agent_field = fields[4]
    if agent_field and agent_field[:1] != b"=":
        raise ValueError("bad agent field")
    env = {}
    for item in fields[5:]:
        key, eq, value = item.partition(b"=")
        if not eq or not key:
            raise ValueError("bad environment entry")
        env[os.fsdecode(key)] = os.fsdecode(value)
    agent = os.fsdecode(agent_field[1:]) if agent_field else None
    return fields[1], os.fsdecode(fields[2]), os.fsdecode(fields[3]), agent, env


def encode_reply(code: int, stderr: str, stdout: str) -> bytes:
    err = stderr.encode("utf-8", "surrogateescape")
    return b"A %d %d\n" % (code, len(err)) + err + stdout.encode("utf-8", "surrogateescape")


def encode_decline(reason: str) -> bytes:
    return b"D " + reason.encode("utf-8", "replace")


def decode_reply(data: bytes) -> tuple[int, str, str] | None:
    """(exit code, stderr, stdout) of an answer; None for a decline or anything malformed."""
    head, newline, rest = data.partition(b"\n")
    words = head.split(b" ")
    if not newline or len(words) != 3 or words[0] != b"A":
        return None
    try:
        code, size = int(words[1]), int(words[2])
    except ValueError:
        return None
    if not 0 <= size <= len(rest):
        return None
    return code, rest[:size].decode("utf-8", "surrogateescape"), rest[size:].decode(
        "utf-8", "surrogateescape"
    )


def ask(home: str, roster: str, agent: str | None) -> tuple[int, str, str] | None:
    """(exit code, stderr, stdout) of `status [AGENT] --json` as the watcher of the fleet
    at `home` answers it, or None: no watcher, no answer in time, or it declined."""
    from mosaic.config.locate import status_socket

    try:
        request = encode_request(stamp(), home, roster, agent, dict(os.environb))
        if len(request) > MAX_REQUEST:
            return None
        reply = _exchange(status_socket(home), request)
    except (OSError, ValueError):
        return None
    return None if reply is None else decode_reply(reply)


def _exchange(path: str, request: bytes) -> bytes | None:
    start = time.monotonic()
    deadline = start + DEADLINE_S
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        address, fd = unix_address(path)
        try:
            sock.settimeout(DEADLINE_S)
            sock.connect(address)
        finally:
            if fd is not None:
                os.close(fd)
        if peer_uid(sock) != os.getuid():
            return None  # not ours: it gets nothing of this environment
        sock.sendall(request)
        sock.shutdown(_socket.SHUT_WR)
        reply = receive_all(sock, deadline, MAX_REPLY, start + WORKING_S)
    finally:
        sock.close()
    if reply is not None and reply.startswith(WORKING):
        return reply[len(WORKING) :]
    return reply


def receive_all(
    sock: _socket.socket, deadline: float, limit: int, working: float | None = None
) -> bytes | None:
    """Everything the peer sends until it shuts its side down, or None: past `deadline`
    (a monotonic time; `working` instead once the data begins with WORKING), more than
    `limit` bytes, or the connection failed. Both ends read this way: the client its
    reply, the watcher a request."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if working is not None and size >= len(WORKING):
            if b"".join(chunks).startswith(WORKING):
                deadline = working
            working = None
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except OSError:  # timeout, reset
            return None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
