"""`status --json` served by the running watcher (`watch/serve.py`, docs/architecture.md
"status served by the watcher"): taken when the watcher can answer exactly as the caller's
own process would, left to the caller otherwise, fresh on every request, and not to be hurt
or misused by whatever connects to it.

Which path answered is read from `-X importtime` (`statuskit`); answers are compared byte
for byte with the click command's in the same environment.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetkit import ok, shell_roster, write_roster
from helpers import pid_alive, wait_until
from mosaic.config.paths import Paths, resolve
from mosaic.watch import serve, statusclient
from statuskit import run, same_every_way, served, standalone_watcher
from systemd_harness import UserManager, user_manager
from watchkit import last_seq, wait_event, watcher_running

__all__ = ["user_manager"]  # the fixture, imported for pytest

ARGV = ["fleet", "status", "--json"]
# The interpreter itself, which another uid may run wherever the venv lives.
PYTHON = os.path.realpath(sys.executable)


def paths_of(env: dict[str, str]) -> Paths:
    return resolve(env=env)


def request(env: dict[str, str], *, stamp: bytes | None = None,
            agent: str | None = None) -> bytes:  # fmt: skip
    """A request as the client would send it for a caller with environment `env`."""
    paths = paths_of(env)
    environ = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    code = statusclient.stamp() if stamp is None else stamp
    return statusclient.encode_request(code, str(paths.home), str(paths.roster), agent, environ)


def exchange(env: dict[str, str], data: bytes) -> bytes | None:
    """What the watcher of `env`'s fleet replies to `data` (the client's own transport)."""
    return statusclient._exchange(str(paths_of(env).status_socket), data)


def start_and_serve(env: dict[str, str], *agents: str) -> None:
    ok(env, "start", *agents)
    wait_until(lambda: served(env), timeout=30, interval=0.2, what="the watcher serving")


# --- taken, and the same ---------------------------------------------------------------------


def test_the_served_client_imports_next_to_nothing(fleet_env: dict[str, str]) -> None:
    """The whole served command is an interpreter, a few small modules and one socket."""
    write_roster(fleet_env, shell_roster(["a1"]))
    start_and_serve(fleet_env, "a1")
    answered = run(fleet_env, ARGV)
    assert answered.served and answered.code == 0
    assert answered.agent("a1")["state"] == "running"
    bare = run(fleet_env, [], code="pass").imported
    assert answered.imported - bare == {
        "mosaic", "mosaic.cli", "mosaic.cli.argv", "mosaic.cli.quickstatus", "mosaic.config",
        "mosaic.config.locate", "mosaic.watch", "mosaic.watch.statusclient", "_socket",
        "__future__",
    }  # fmt: skip
    run_dir = paths_of(fleet_env).run
    assert os.stat(run_dir).st_mode & 0o777 == 0o700
    assert os.stat(paths_of(fleet_env).status_socket).st_mode & 0o777 == 0o600
    ok(fleet_env, "stop")


def test_a_stop_then_status_at_once_tells_the_truth(fleet_env: dict[str, str]) -> None:
    """Nothing is cached between requests: each answer is computed when it is asked."""
    write_roster(fleet_env, shell_roster(["a1", "a2"]))
    start_and_serve(fleet_env)
    for _ in range(3):
        ok(fleet_env, "stop", "a1")
        after_stop = run(fleet_env, ARGV)
        assert after_stop.served
        assert after_stop.agent("a1")["state"] == "stopped"
        assert after_stop.agent("a1")["pid"] is None
        assert after_stop.agent("a2")["state"] == "running"
        ok(fleet_env, "start", "a1")
        after_start = run(fleet_env, ARGV)
        assert after_start.served
        assert after_start.agent("a1")["state"] in ("starting", "running")
        assert after_start.agent("a1")["pid"] is not None
    ok(fleet_env, "stop")


def test_the_roster_and_its_variables_are_the_callers(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """The roster is read on each request with the caller's environment: an edit shows at
    once, and a `$VAR` in it has the caller's value (here: whether a1 drifted)."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    roster = shell_roster(["a1"]).replace(
        "runtime: shell\n", f"runtime: shell\n    workdir: {tmp_path}/$WHERE\n"
    )
    env = {**fleet_env, "WHERE": "one"}
    write_roster(env, roster)
    start_and_serve(env, "a1")
    same = same_every_way(env, "status", "--json", served=True)
    assert same.agent("a1")["drift"] is False
    changed = same_every_way({**env, "WHERE": "two"}, "status", "--json", served=True)
    assert changed.agent("a1")["drift"] is True
    assert "workdir" in changed.agent("a1")["drift_reason"]
    write_roster(env, roster + "  - name: a2\n    runtime: shell\n")
    edited = same_every_way(env, "status", "--json", served=True)
    assert edited.agent("a2")["state"] == "stopped"
    ok(env, "stop")


# --- left to the caller ------------------------------------------------------------------


def test_a_stopped_or_killed_watcher_leaves_status_to_the_caller(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    write_roster(env, shell_roster(["a1"]))
    start_and_serve(env, "a1")
    sock = paths_of(env).status_socket
    # SIGKILL: the supervisor restarts the watcher, which serves again over the stale socket.
    first = run(env, ARGV).doc()["watcher"]["pid"]
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not pid_alive(first), what="the watcher gone")
    wait_until(lambda: (a := run(env, ARGV)).served and a.doc()["watcher"]["pid"] != first,
               timeout=30, interval=0.2, what="the restarted watcher serving")  # fmt: skip
    # Stopped with the fleet: no socket, the command answers itself.
    ok(env, "stop")
    assert not sock.exists()
    same_every_way(env, "status", "--json", served=False)
    # A watcher killed where nothing restarts it leaves its socket behind: refused at once.
    with standalone_watcher(env, tmp_path) as watcher:
        os.kill(watcher.pid, signal.SIGKILL)
        watcher.wait(timeout=10)
        assert sock.is_socket()
        stale = same_every_way(env, "status", "--json", served=False)
        assert stale.code == 0 and stale.doc()["watcher"]["state"] == "stopped"
    # The next watcher replaces the stale socket.
    with standalone_watcher(env, tmp_path):
        same_every_way(env, "status", "--json", served=True)


def test_a_watcher_that_does_not_answer_in_time_is_not_waited_for(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    write_roster(env, shell_roster(["a1"]))
    with standalone_watcher(env, tmp_path) as watcher:
        os.kill(watcher.pid, signal.SIGSTOP)
        try:
            # The kernel takes the connection; nobody answers: the deadline, then itself.
            late = run(env, ARGV)
            assert not late.served and late.code == 0
            assert late.doc()["holder"] == "stopped"
        finally:
            os.kill(watcher.pid, signal.SIGCONT)
        wait_until(lambda: served(env), timeout=30, what="served again")


def test_another_mosaic_is_not_served(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    write_roster(env, shell_roster(["a1"]))
    with standalone_watcher(env, tmp_path):
        assert exchange(env, request(env, stamp=b"mosaic 0.0.9")) == (
            b"D another mosaic (version or code)"
        )
        other = (
            "import sys; import mosaic.watch.statusclient as c; "
            "c.stamp = lambda package=None: b'mosaic 0.0.9'; "
            "from mosaic.cli import main; sys.exit(main())"
        )
        older = run(env, ARGV, code=other)
        assert not older.served and older.code == 0
        assert older.same == run(env, ARGV, "click").same
        assert run(env, ARGV).served


def test_a_changed_module_changes_the_stamp(tmp_path: Path) -> None:
    package = Path(statusclient.__file__).resolve().parent.parent
    copy = tmp_path / "mosaic"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = statusclient.stamp(str(copy))
    assert statusclient.stamp(str(copy)) == before
    module = copy / "screen" / "classify.py"
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert statusclient.stamp(str(copy)) != before
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert statusclient.stamp(str(copy)) == before
    (copy / "watch" / "new.py").write_text("")
    assert statusclient.stamp(str(copy)) != before


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("PATH", lambda v: v + os.pathsep + "/nonexistent"),
        ("XDG_RUNTIME_DIR", lambda v: "/nonexistent"),
        ("DBUS_SESSION_BUS_ADDRESS", lambda v: "unix:path=/nonexistent"),
        ("TMUX_TMPDIR", lambda v: v + "/"),
        ("LANG", lambda v: "C"),
        ("TZ", lambda v: ":/etc/localtime"),
        ("SHELL", lambda v: "/bin/sh"),
    ],
)
def test_a_caller_whose_environment_differs_is_not_served(
    fleet_env: dict[str, str], key: str, value: object
) -> None:
    assert callable(value)
    write_roster(fleet_env, shell_roster(["a1"]))
    start_and_serve(fleet_env, "a1")
    caller = {**fleet_env, key: value(fleet_env.get(key, ""))}
    assert exchange(caller, request(caller)) == f"D ${key} differs".encode()
    answered = same_every_way(caller, "status", "--json", served=False)
    assert answered.code == 0
    ok(fleet_env, "stop")


def test_a_roster_with_hosts_is_served_asking_the_hosts(fleet_env: dict[str, str]) -> None:
    env = fleet_env
    write_roster(env, shell_roster(["a1"]))
    start_and_serve(env, "a1")
    # Port 1 of this machine refuses at once: the host's row says so, in every path.
    write_roster(env, shell_roster(["a1"]) + "  - {name: r1, runtime: shell, host: h1}\n"
                 "hosts:\n  h1: {ssh: nobody@127.0.0.1, port: 1}\n")  # fmt: skip
    answered = same_every_way(env, "status", "--json", served=True)
    assert answered.agent("a1")["state"] == "running"
    assert answered.agent("r1")["state"] == "unknown"
    (h1,) = [h for h in answered.doc()["hosts"] if h["name"] == "h1"]
    assert h1["reachable"] is False and "refused" in h1["error"]
    assert "host h1 unreachable" in answered.err
    write_roster(env, shell_roster(["a1"]))
    ok(env, "stop")


def fake_ssh(bin_dir: Path, body: str) -> None:
    """An `ssh` first on PATH that runs `body` (sh) instead of connecting anywhere."""
    bin_dir.mkdir(exist_ok=True)
    ssh = bin_dir / "ssh"
    ssh.write_text("#!/bin/sh\n" + body)
    ssh.chmod(0o755)


def test_the_hosts_are_asked_with_the_callers_environment(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """ssh runs with the caller's environment, not the watcher's: its agent socket (which
    a new login changes) is the caller's, and so is anything its configuration reads."""
    seen = tmp_path / "seen"
    refused = 'echo "ssh: connect to host h port 22: Connection refused" >&2; exit 255\n'
    fake_ssh(tmp_path / "bin", f'echo "$SSH_AUTH_SOCK" >> {seen}\n{refused}')
    env = {**fleet_env, "PATH": f"{tmp_path / 'bin'}:{fleet_env['PATH']}",
           "SSH_AUTH_SOCK": "/run/watcher-agent"}  # fmt: skip
    write_roster(env, shell_roster(["a1"]) + "  - {name: r1, runtime: shell, host: h1}\n"
                 "hosts:\n  h1: {ssh: nobody@h}\n")  # fmt: skip
    with standalone_watcher(env, tmp_path):
        caller = {**env, "SSH_AUTH_SOCK": "/run/caller-agent"}
        answered = run(caller, ARGV)
        assert answered.served and answered.agent("r1")["state"] == "unknown"
        assert seen.read_text().splitlines()[-1] == "/run/caller-agent"


def test_a_slow_host_is_waited_for_past_the_usual_deadline(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """The watcher says it is asking hosts, and the client waits as long as its own call
    would have instead of giving up at `DEADLINE_S` and asking them all over again."""
    calls = tmp_path / "calls"
    timed_out = 'echo "ssh: connect to host h port 22: Connection timed out" >&2; exit 255\n'
    slow = f"sleep {statusclient.DEADLINE_S + 1}\n"
    fake_ssh(tmp_path / "bin", f"echo x >> {calls}\n{slow}{timed_out}")
    env = {**fleet_env, "PATH": f"{tmp_path / 'bin'}:{fleet_env['PATH']}"}
    write_roster(env, shell_roster(["a1"]) + "  - {name: r1, runtime: shell, host: h1}\n"
                 "hosts:\n  h1: {ssh: nobody@h}\n")  # fmt: skip
    with standalone_watcher(env, tmp_path):
        calls.unlink()  # the calls of the wait for the watcher to serve
        answered = run(env, ARGV)
        assert answered.served
        assert answered.agent("r1")["state"] == "unknown"
        assert calls.read_text() == "x\n"  # asked once, by the watcher


def test_under_systemd_only_a_caller_with_the_units_environment_is_served(
    user_manager: UserManager, fleet_env: dict[str, str]
) -> None:
    """The watcher unit runs with the user manager's environment; a caller with the same
    values is served, one without a way to the manager (cron: no XDG_RUNTIME_DIR) is not,
    and still hears why it cannot be answered (exit 1)."""
    env = user_manager.env_for(fleet_env)
    env["MOSAIC_FLEET_SUPERVISOR"] = "systemd"
    write_roster(env, shell_roster(["a1"]))
    ok(env, "install")
    ok(env, "start")
    pid = wait_until(lambda: watcher_running(env), timeout=30, what="watcher running")["pid"]
    wait_until(lambda: paths_of(env).status_socket.exists(), timeout=30, what="its socket")
    unit_env = dict(
        entry.split("=", 1)
        for entry in Path(f"/proc/{pid}/environ").read_text().split("\0")
        if "=" in entry
    )
    like_unit = {k: v for k, v in env.items() if k not in serve.MUST_MATCH}
    like_unit.update({k: unit_env[k] for k in serve.MUST_MATCH if k in unit_env})
    answered = same_every_way(like_unit, "status", "--json", served=True)
    assert answered.doc()["supervisor"] == "systemd"
    assert answered.agent("a1")["state"] == "running"
    cron = {k: v for k, v in like_unit.items()
            if k not in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")}  # fmt: skip
    assert exchange(cron, request(cron)) == b"D $XDG_RUNTIME_DIR differs"
    refused = same_every_way(cron, "status", "--json", served=False)
    assert refused.code == 1 and refused.out == ""
    assert "the systemd user manager cannot be reached: XDG_RUNTIME_DIR is not set" in (
        refused.err
    )
    ok(env, "stop")
    ok(env, "uninstall")


# --- who may ask, and what they may send -----------------------------------------------------


def _nobody() -> tuple[int, int]:
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


needs_root = pytest.mark.skipif(
    os.getuid() != 0 or shutil.which("setpriv") is None,
    reason="switching to another uid needs root and setpriv",
)

# A raw client: connects through an inherited descriptor of the run directory (so no
# directory above it needs to let it pass), sends a request, prints how much came back.
_RAW_CLIENT = """\
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(f"/proc/self/fd/{sys.argv[1]}/status.sock")
got = b""
try:
    s.sendall(sys.stdin.buffer.read())
    s.shutdown(socket.SHUT_WR)
    while chunk := s.recv(65536):
        got += chunk
except OSError:  # refused: the watcher hung up
    pass
print(len(got), got[:1].decode())
"""


@needs_root
def test_another_uid_is_refused_even_where_it_can_connect(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """The socket is 0600 in a 0700 directory; were both opened up, SO_PEERCRED still
    refuses a client of another uid (a real one: setpriv switches to `nobody`)."""
    env = fleet_env
    write_roster(env, shell_roster(["a1"]))
    paths = paths_of(env)
    with standalone_watcher(env, tmp_path):
        data = request(env)
        os.chmod(paths.run, 0o711)  # noqa: S103 - opened up on purpose: the uid rule alone
        os.chmod(paths.status_socket, 0o666)  # noqa: S103
        fd = os.open(paths.run, os.O_PATH | os.O_DIRECTORY)
        try:
            uid, gid = _nobody()

            def client(*switch: str) -> str:
                proc = subprocess.run(
                    [*switch, PYTHON, "-c", _RAW_CLIENT, str(fd)], input=data,
                    capture_output=True, pass_fds=(fd,), timeout=30, cwd="/",
                )  # fmt: skip
                assert proc.returncode == 0, proc.stderr.decode()
                return proc.stdout.decode().strip()

            drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
            assert client(*drop) == "0"  # connected, and got nothing at all
            assert client().split()[1] == "A"  # the same bytes from our own uid: answered
        finally:
            os.close(fd)
            os.chmod(paths.run, 0o700)
        log = (tmp_path / "watcher.log").read_text()
        assert f"status: refused a client of uid {uid}" in log
        assert run(env, ARGV).served


def test_the_uid_rule_is_the_servers_own_check(tmp_path: Path) -> None:
    """The same rule by code path, where no second uid is to be had: a server whose peer
    check sees another uid answers nothing, and says so."""
    home = tmp_path / "home"
    paths = Paths(home=home, roster=home / "fleet" / "roster.yaml")
    logged: list[str] = []
    server = serve.StatusServer(paths, "sock", logged.append,
                                peer_uid=lambda conn: os.getuid() + 1)  # fmt: skip
    server.start()
    try:
        assert statusclient.ask(str(home), str(paths.roster), None) is None
        wait_until(lambda: logged, what="the refusal logged")
        assert logged == [f"status: refused a client of uid {os.getuid() + 1}"]
    finally:
        server.close()
    assert not paths.status_socket.exists()


@needs_root
def test_the_client_tells_nothing_to_a_server_of_another_uid(tmp_path: Path) -> None:
    """The caller's environment goes only to its own uid: a socket in its place owned by
    someone else gets no byte of it."""
    uid, gid = _nobody()
    base = Path(tempfile.mkdtemp(prefix="ms-", dir="/tmp"))
    try:
        run_dir = base / "home" / "fleet" / "run"
        run_dir.mkdir(parents=True)
        for d in (base, base / "home", base / "home" / "fleet", run_dir):
            os.chown(d, uid, gid)
            d.chmod(0o755)
        fake = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)\n"
            "print('ready', flush=True)\n"
            "c, _ = s.accept(); c.settimeout(5)\n"
            "got = b''\n"
            "try:\n"
            "    while chunk := c.recv(65536): got += chunk\n"
            "except OSError: pass\n"
            "print(len(got), flush=True)\n"
        )
        sock = str(run_dir / "status.sock")
        proc = subprocess.Popen(
            ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
             PYTHON, "-c", fake, sock],
            stdout=subprocess.PIPE, text=True, cwd="/",
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            home = str(base / "home")
            assert statusclient.ask(home, home + "/fleet/roster.yaml", None) is None
            out, _ = proc.communicate(timeout=30)
            assert out.strip() == "0"
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def idle_connections(path: Path, n: int) -> Iterator[list[socket.socket]]:
    """`n` clients that connect and never send a byte."""
    held = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(path))
            held.append(s)
        yield held
    finally:
        for s in held:
            s.close()


def _flood(path: Path, data: bytes) -> bytes:
    """Send `data` (without ending the request if it is too big to be read) and return
    whatever comes back."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect(str(path))
        with contextlib.suppress(OSError):
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        got = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                got += chunk
        return got
    finally:
        s.close()


def test_garbage_floods_and_silent_clients_do_not_hurt_the_watcher(
    fleet_env: dict[str, str],
) -> None:
    env = fleet_env
    write_roster(env, "version: 1\nagents:\n  - name: d1\n    runtime: demo\n"
                      "    args: ['--think', '2']\n")  # fmt: skip
    start_and_serve(env)
    wait_until(lambda: run(env, ARGV).agent("d1")["activity"] == "idle", timeout=30,
               what="d1 idle")  # fmt: skip
    paths = paths_of(env)
    sock = paths.status_socket
    watcher_pid = run(env, ARGV).doc()["watcher"]["pid"]

    assert _flood(sock, b"\x00\xff garbage " * 1000) == b"D malformed request"
    assert _flood(sock, statusclient.PROTOCOL + b"\0s\0h\0r\0=a1\0no-equals-sign") == (
        b"D malformed request"
    )
    assert _flood(sock, b"x" * (statusclient.MAX_REQUEST + 1)) == b""  # read no further
    assert _flood(sock, b"") == b"D malformed request"
    assert _flood(sock, os.urandom(8 * 1024 * 1024)) == b""

    # Silent clients hold serving threads (each up to REQUEST_S); the tick goes on regardless.
    with idle_connections(sock, 4):
        beat = paths.watcher_heartbeat.stat().st_mtime
        wait_until(lambda: paths.watcher_heartbeat.stat().st_mtime > beat + 0.5,
                   timeout=10, what="the heartbeat moving on")  # fmt: skip
        mark = last_seq(env)
        ok(env, "send", "d1", "hello")
        wait_event(env, "busy", "d1", after=mark)
        wait_event(env, "idle", "d1", after=mark)
    # Past CLIENTS at once a client's connection is closed, to answer itself: never a
    # thread more (one would answer it).
    with idle_connections(sock, serve.CLIENTS):
        assert exchange(env, request(env)) is None
    wait_until(lambda: served(env), timeout=30, what="served again")
    # Many at once, while the watcher serves real requests in between.
    floods = [threading.Thread(target=_flood, args=(sock, b"junk" * 5000)) for _ in range(20)]
    for t in floods:
        t.start()
    for t in floods:
        t.join(timeout=60)
    wait_until(lambda: served(env), timeout=30, what="served again")
    assert run(env, ARGV).doc()["watcher"]["pid"] == watcher_pid  # the same process throughout
    ok(env, "stop")


def test_a_home_too_long_for_a_socket_address_is_served(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    env = {**fleet_env, "MOSAIC_HOME": str(deep / "home")}
    write_roster(env, shell_roster(["a1"]))
    assert len(str(paths_of(env).status_socket)) > 108
    with standalone_watcher(env, tmp_path):
        same_every_way(env, "status", "--json", served=True)


# --- pure parts ------------------------------------------------------------------------------


def test_the_wire_format_round_trips() -> None:
    environ = {b"A": b"1", b"WEIRD": b"\xff=x", b"EMPTY": b""}
    for agent in (None, "", "a1"):
        data = statusclient.encode_request(b"stamp\n1", "/h", "/h/r.yaml", agent, environ)
        stamp, home, roster, got, env = statusclient.decode_request(data)
        assert (stamp, home, roster, got) == (b"stamp\n1", "/h", "/h/r.yaml", agent)
        assert {os.fsencode(k): os.fsencode(v) for k, v in env.items()} == environ
    for code, err, out in ((0, "", '{"a": "é"}\n'), (2, "unknown agent 'zz'\n", "")):
        assert statusclient.decode_reply(statusclient.encode_reply(code, err, out)) == (
            code, err, out,
        )  # fmt: skip
    for bad in (b"", b"D declined", b"A 0 99\nshort", b"A x 0\n", b"B 0 0\n", b"A 0\n"):
        assert statusclient.decode_reply(bad) is None
    for bad in (b"", b"other/1\0s\0h\0r\0", statusclient.PROTOCOL + b"\0s\0h\0r\0x"):
        with pytest.raises(ValueError):
            statusclient.decode_request(bad)


def test_each_variable_read_from_the_process_environment_must_match() -> None:
    own = serve.Own(b"s", "/h", "/h/r", "sock", {k: "v" for k in serve.MUST_MATCH})
    caller = dict(own.env)
    assert serve.refusal(own, b"s", "/h", "/h/r", caller) is None
    assert serve.refusal(own, b"t", "/h", "/h/r", caller) == "another mosaic (version or code)"
    assert serve.refusal(own, b"s", "/g", "/h/r", caller) == "another home or roster"
    assert serve.refusal(own, b"s", "/h", "/g/r", caller) == "another home or roster"
    for key in serve.MUST_MATCH:
        assert serve.refusal(own, b"s", "/h", "/h/r", {**caller, key: "w"}) == f"${key} differs"
        unset = {k: v for k, v in caller.items() if k != key}
        assert serve.refusal(own, b"s", "/h", "/h/r", unset) == f"${key} differs"
    # Variables the document takes from the environment it is handed may differ.
    extra = {**caller, "MOSAIC_FLEET_SUPERVISOR": "tmux", "FOO": "x"}
    assert serve.refusal(own, b"s", "/h", "/h/r", extra) is None


def test_the_reference_names_every_variable_that_must_match() -> None:
    reference = (Path(__file__).resolve().parent.parent / "docs" / "reference.md").read_text()
    status = reference[reference.index("\n## status\n") : reference.index("\n## send\n")]
    for key in serve.MUST_MATCH:
        assert f"`{key}`" in status, key
