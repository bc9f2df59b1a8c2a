"""Ctrl-C: a command stopped while it waits exits 130 with the one line "interrupted", no
traceback, and leaves nothing half-done: locks it was waiting for are untouched, files are
as they were, nothing was started or typed.

Each test runs the real CLI in its own process group and interrupts it as a terminal does,
with SIGINT to the whole group, once the kernel shows it blocked where the test wants it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleetkit import agent, mosaic, ok, sessions, shell_roster, tmux, write_roster
from helpers import MOSAIC, lock_is_free, pid_alive, wait_until
from mosaic.demo_agent import read_recording

INTERRUPTED = "interrupted\n"


def _tasks(pid: int) -> set[int]:
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except FileNotFoundError:
        return set()


def _waits_for_flock(pid: int, lock: Path) -> bool:
    """True when a thread of `pid` is queued for an flock on `lock` (/proc/locks "->")."""
    ino = lock.stat().st_ino
    ids = {pid} | _tasks(pid)
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) < 7 or fields[1] != "->" or fields[2] != "FLOCK":
            continue
        try:
            waiter, inode = int(fields[5]), int(fields[6].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if waiter in ids and inode == ino:
            return True
    return False


@contextmanager
def _holding(code: str, lock: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """Another process that holds `lock` through `code` until its stdin closes."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        {code}
        with hold(Path(sys.argv[1])):
            print("held", flush=True)
            sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(lock)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def _release(holder: subprocess.Popen[bytes]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*MOSAIC, "fleet", *args],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip


def _ctrl_c(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """SIGINT to the command's process group, as the terminal sends for Ctrl-C."""
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def test_restart_waiting_on_the_restart_lock(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    lock = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "run" / "restart.lock"
    code = "from mosaic.supervise.restartlock import restart_lock as hold"
    with _holding(code, lock, fleet_env) as holder:
        restart = _start(fleet_env, "restart")
        wait_until(lambda: _waits_for_flock(restart.pid, lock), timeout=30,
                   what="restart queued on the restart lock")  # fmt: skip
        assert _ctrl_c(restart) == (130, "", INTERRUPTED)
        # The other restart still owns the lock, and nothing was started meanwhile.
        assert pid_alive(holder.pid) and not lock_is_free(lock)
        assert sessions(fleet_env) == []
        _release(holder)
    assert lock_is_free(lock)
    ok(fleet_env, "restart")  # and the next restart gets straight in
    assert sessions(fleet_env) == ["a1"]
    ok(fleet_env, "stop")


def test_add_waiting_on_the_roster_edit_lock(fleet_env: dict[str, str]) -> None:
    roster = write_roster(fleet_env, "# the user's own comment\n" + shell_roster(["a1"]))
    before = roster.read_bytes()
    lock = roster.with_name(roster.name + ".lock")
    lock.touch(mode=0o600)
    listing = sorted(os.listdir(roster.parent))
    code = "from mosaic.base.flock import exclusive as hold"
    with _holding(code, lock, fleet_env) as holder:
        add = _start(fleet_env, "add", "a2", "--runtime", "shell")
        wait_until(lambda: _waits_for_flock(add.pid, lock), timeout=30,
                   what="add queued on the roster lock")  # fmt: skip
        assert _ctrl_c(add) == (130, "", INTERRUPTED)
        assert roster.read_bytes() == before
        assert sorted(os.listdir(roster.parent)) == listing  # no temp file left behind
        assert not lock_is_free(lock)
        _release(holder)
    ok(fleet_env, "add", "a2", "--runtime", "shell")  # the lock is usable at once
    assert roster.read_bytes() == before + b"  - name: a2\n    runtime: shell\n"


def test_send_interrupted_mid_delivery(fleet_env: dict[str, str], tmp_path: Path) -> None:
    # The demo agent swallows every Enter (the window is far longer than the test), so the
    # send keeps pressing the submit key while it holds the agent's send lock.
    rec = tmp_path / "d1.jsonl"
    args = json.dumps(["--think", "0", "--swallow-enter-ms", "600000", "--record", str(rec)])
    write_roster(fleet_env, f"version: 1\nagents:\n  - {{name: d1, runtime: demo, args: {args}}}\n")
    ok(fleet_env, "start")
    wait_until(lambda: agent(fleet_env, "d1")["activity"] == "idle", timeout=15)
    lock = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "run" / "send" / "d1.lock"

    send = _start(fleet_env, "send", "--timeout", "600", "d1", "held in the input")
    wait_until(lambda: lock.exists() and not lock_is_free(lock), timeout=30,
               what="send holding d1's send lock")  # fmt: skip
    # Interrupted mid-delivery: after the paste, while the submit key is being retried.
    wait_until(lambda: "held in the input" in tmux(fleet_env, "capture-pane", "-p", "-t", "=d1:"),
               timeout=30, what="the message pasted")  # fmt: skip
    code, out, err = _ctrl_c(send)
    assert (code, out, err) == (130, "", INTERRUPTED)
    assert lock_is_free(lock)
    # A second send gets the lock at once (a leaked one would hold it here until the
    # subprocess timeout) and gives its own verdict after its own short timeout.
    second = mosaic(fleet_env, "send", "--json", "--timeout", "1", "d1", "and again")
    assert second.code == 3, second.out + second.err
    [row] = json.loads(second.out)["results"]
    assert row["outcome"] == "not_accepted"
    # The interrupted text was typed once and never submitted.
    screen = tmux(fleet_env, "capture-pane", "-p", "-t", "=d1:")
    assert screen.count("held in the input") == 1
    assert not rec.exists() or read_recording(str(rec)) == []
    ok(fleet_env, "stop")
