"""The tmux supervisor end to end: real tmux on a private socket, real bash and python3."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from fleetkit import PY_CRASH, agent, mosaic, ok, sessions, shell_roster, status, tmux, write_roster
from helpers import pid_alive, wait_until


def running(env: dict[str, str], name: str) -> dict[str, object] | None:
    row = agent(env, name)
    return row if row["state"] == "running" and row["pid"] else None


def test_start_status_idempotent_and_stop_all(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1", "a2"]))
    out = ok(fleet_env, "start").out
    assert "a1: started" in out and "a2: started" in out
    assert sessions(fleet_env) == ["a1", "a2"]
    first = wait_until(lambda: running(fleet_env, "a1"), what="a1 running")
    doc = status(fleet_env)
    assert doc["supervisor"] == "tmux"
    assert doc["socket"] == fleet_env["MOSAIC_TMUX_SOCKET"]
    assert doc["holder"] == "running"
    row = doc["agents"][0]
    assert set(row) >= {"name", "runtime", "state", "activity", "pid", "uptime_s",
                        "restarts", "last_exit", "session"}  # fmt: skip
    assert row["session"] == "a1" and row["runtime"] == "shell" and row["restarts"] == 0
    assert row["last_exit"] is None
    # The pid is the runtime's own process, not tmux or a wrapper.
    assert Path(f"/proc/{row['pid']}/comm").read_text().strip() == "bash"

    again = ok(fleet_env, "start").out
    assert "already running" in again
    assert agent(fleet_env, "a1")["pid"] == first["pid"]
    assert sessions(fleet_env) == ["a1", "a2"]

    pids = [r["pid"] for r in status(fleet_env)["agents"]]
    ok(fleet_env, "stop")
    assert sessions(fleet_env) == []
    assert status(fleet_env)["holder"] == "stopped"
    assert all(not pid_alive(p) for p in pids)
    assert {r["state"] for r in status(fleet_env)["agents"]} == {"stopped"}


def test_stop_one_leaves_the_others(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1", "a2"]))
    ok(fleet_env, "start")
    a1 = wait_until(lambda: running(fleet_env, "a1"))
    ok(fleet_env, "stop", "a1")
    assert sessions(fleet_env) == ["a2"]
    assert not pid_alive(int(str(a1["pid"])))
    assert agent(fleet_env, "a1")["state"] == "stopped"
    assert agent(fleet_env, "a2")["state"] == "running"
    assert status(fleet_env)["holder"] == "running"
    # A stopped agent stays stopped: no hook brings it back. The marker is a crash of a2,
    # which goes through the same pane-died hook, backoff and delayed respawn after a1's exit
    # went through them: once a2 is back, a1's respawn (had one been scheduled) is past too.
    a2 = agent(fleet_env, "a2")
    os.kill(int(str(a2["pid"])), signal.SIGKILL)
    wait_until(lambda: (r := running(fleet_env, "a2")) and r["pid"] != a2["pid"],
               what="a2 respawned after its crash")  # fmt: skip
    assert agent(fleet_env, "a1")["state"] == "stopped"
    assert sessions(fleet_env) == ["a2"]


def test_stop_kills_the_whole_tree_even_hup_ignoring_children(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    ok(fleet_env, "start")
    wait_until(lambda: running(fleet_env, "a1"))
    pidfile = Path(fleet_env["HOME"]) / "child.pid"
    # Like Codex and Claude Code: a process that survives SIGHUP (and SIGTERM).
    tmux(fleet_env, "send-keys", "-t", "=a1:", "-l", "--",
         f"(trap '' HUP TERM; exec sleep 1000) & echo $! > {pidfile}")  # fmt: skip
    tmux(fleet_env, "send-keys", "-t", "=a1:", "Enter")
    child = int(wait_until(lambda: pidfile.read_text().strip() if pidfile.exists() else None))
    assert pid_alive(child)
    ok(fleet_env, "stop")
    assert not pid_alive(child)


def test_sigkill_of_runtime_is_restarted_with_new_pid(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    ok(fleet_env, "start")
    first = wait_until(lambda: running(fleet_env, "a1"))
    os.kill(int(str(first["pid"])), signal.SIGKILL)

    def restarted() -> dict[str, object] | None:
        row = agent(fleet_env, "a1")
        ok_ = row["state"] == "running" and row["pid"] not in (None, first["pid"])
        return row if ok_ else None

    row = wait_until(restarted, timeout=10, what="a1 restarted")
    assert int(str(row["restarts"])) >= 1
    assert row["last_exit"] == -9


def test_crash_loop_backs_off_then_fails_and_stays_failed(fleet_env: dict[str, str]) -> None:
    slow_crash = ["python3", "-c", "import time; time.sleep(0.6); raise SystemExit(4)"]
    body = (
        "version: 1\nagents:\n"
        "  - name: crashy\n    runtime: crash\n"
        "  - name: witness\n    runtime: slowcrash\n"
        "runtimes:\n"
        f"  crash:\n    command: {json.dumps(PY_CRASH)}\n    processes: [python3]\n"
        f"  slowcrash:\n    command: {json.dumps(slow_crash)}\n    processes: [python3]\n"
    )
    write_roster(fleet_env, body)
    started = time.monotonic()
    ok(fleet_env, "start", "crashy")
    row = wait_until(lambda: (r := agent(fleet_env, "crashy"))["state"] == "failed" and r,
                     timeout=30, interval=0.2, what="crashy failed")  # fmt: skip
    elapsed = time.monotonic() - started
    # Backoff 0.5 + 1 + 2 + 4 s between five quick crashes: never a tight loop.
    assert elapsed >= 7.0, elapsed
    assert row["restarts"] == 4
    assert row["last_exit"] == 4
    assert row["pid"] is None
    # Stays failed. Had the hook scheduled a sixth start, it would come after the next
    # doubling (8 s). The marker is a second crash loop on the same server, started only
    # now: five crashes of 0.6 s with the same backoff take over 10 s to reach `failed`.
    ok(fleet_env, "start", "witness")
    wait_until(lambda: agent(fleet_env, "witness")["state"] == "failed",
               timeout=40, interval=0.2, what="witness failed")  # fmt: skip
    row = agent(fleet_env, "crashy")
    assert (row["state"], row["restarts"], row["pid"]) == ("failed", 4, None)
    # An operator's start clears `failed` and tries again.
    ok(fleet_env, "start", "crashy")
    assert agent(fleet_env, "crashy")["state"] in ("running", "starting")


def test_restart_never_and_clean_exit_on_failure_stay_stopped(fleet_env: dict[str, str]) -> None:
    body = (
        "version: 1\nagents:\n"
        "  - name: never\n    runtime: boom\n    restart: never\n"
        "  - name: clean\n    runtime: done\n"
        "  - name: witness\n    runtime: late\n"
        "runtimes:\n"
        f"  boom:\n    command: {json.dumps(PY_CRASH)}\n    processes: [python3]\n"
        "  done:\n    command: [python3, -c, 'import time; time.sleep(0.3)']\n"
        "    processes: [python3]\n"
        "  late:\n    command: [python3, -c, 'import time; time.sleep(1.5); raise SystemExit(4)']\n"
        "    processes: [python3]\n"
    )
    write_roster(fleet_env, body)
    ok(fleet_env, "start")
    wait_until(lambda: agent(fleet_env, "never")["last_exit"] == 4, timeout=10)
    wait_until(lambda: agent(fleet_env, "clean")["last_exit"] == 0, timeout=10)
    # The marker: witness (on-failure) crashes over a second after the other two exited and
    # is respawned through the same hook and backoff; a respawn of never or clean, had one
    # been scheduled, would have come before it.
    wait_until(lambda: agent(fleet_env, "witness")["restarts"] >= 1, timeout=15,
               what="witness respawned")  # fmt: skip
    for name in ("never", "clean"):
        row = agent(fleet_env, name)
        assert row["state"] == "stopped" and row["restarts"] == 0, row


def test_runtime_that_drops_back_to_a_shell_is_not_running(fleet_env: dict[str, str]) -> None:
    body = (
        "version: 1\nagents:\n  - name: wrap\n    runtime: wrapped\n"
        "runtimes:\n  wrapped:\n"
        # Job control on (set -m), as in an interactive shell: python3 is the foreground job.
        "    command: [bash, -c, 'set -m; python3 -c \"import time; time.sleep(6)\"; exec bash']\n"
        "    processes: [python3]\n"
    )
    write_roster(fleet_env, body)
    ok(fleet_env, "start")
    wait_until(lambda: agent(fleet_env, "wrap")["state"] == "running")
    wait_until(lambda: agent(fleet_env, "wrap")["state"] == "stopped", timeout=15)


def test_missing_workdir_and_missing_program_start_nothing(fleet_env: dict[str, str]) -> None:
    body = (
        "version: 1\nagents:\n"
        "  - name: good\n    runtime: shell\n"
        "  - name: lost\n    runtime: shell\n    workdir: /nonexistent/dir-xyz\n"
        "  - name: noprog\n    runtime: ghost\n"
        "runtimes:\n  ghost:\n    command: [no-such-program-xyz]\n"
    )
    write_roster(fleet_env, body)
    res = mosaic(fleet_env, "start")
    assert res.code == 2
    assert "/nonexistent/dir-xyz" in res.err
    assert "no-such-program-xyz" in res.err
    assert "Traceback" not in res.err
    assert sessions(fleet_env) == []


def test_unknown_agent_is_usage_error_listing_known(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1", "a2"]))
    for cmd in ("start", "stop", "restart", "status", "capture", "logs"):
        res = mosaic(fleet_env, cmd, "nosuch")
        assert res.code == 2, (cmd, res)
        assert "nosuch" in res.err and "a1" in res.err and "a2" in res.err, (cmd, res.err)
    assert sessions(fleet_env) == []


def test_capture_and_logs_show_the_agent_output(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    ok(fleet_env, "start")
    wait_until(lambda: running(fleet_env, "a1"))
    tmux(fleet_env, "send-keys", "-t", "=a1:", "-l", "--", "echo hello-$((6*7))")
    tmux(fleet_env, "send-keys", "-t", "=a1:", "Enter")
    wait_until(lambda: "hello-42" in ok(fleet_env, "capture", "a1").out)
    last = ok(fleet_env, "capture", "a1", "-n", "2").out.splitlines()
    assert len(last) <= 2 and any("hello-42" in ln for ln in last)
    wait_until(lambda: "hello-42" in ok(fleet_env, "logs", "a1").out, what="transcript")
    log = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "logs" / "a1.log"
    assert log.stat().st_mode & 0o777 == 0o600
    assert "\x1b" not in ok(fleet_env, "logs", "a1", "-n", "5").out


def test_capture_of_stopped_agent_fails(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1"]))
    res = mosaic(fleet_env, "capture", "a1")
    assert res.code == 1 and "not running" in res.err


def test_restart_gives_new_pids_and_starts_stopped_agents(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1", "a2"]))
    ok(fleet_env, "start", "a1")
    old = wait_until(lambda: running(fleet_env, "a1"))["pid"]
    ok(fleet_env, "restart")
    a1 = wait_until(lambda: running(fleet_env, "a1"))
    assert a1["pid"] != old and not pid_alive(int(str(old)))
    wait_until(lambda: running(fleet_env, "a2"))
    assert sessions(fleet_env) == ["a1", "a2"]


def test_agent_env_and_workdir_reach_the_runtime(fleet_env: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work dir"
    work.mkdir()
    body = (
        "version: 1\ndefaults:\n  env: {SHARED: from-defaults}\nagents:\n"
        f"  - name: a1\n    runtime: shell\n    workdir: {work}\n"
        "    env: {GREETING: 'hi there'}\n"
    )
    write_roster(fleet_env, body)
    ok(fleet_env, "start")
    wait_until(lambda: running(fleet_env, "a1"))
    out = tmp_path / "env.txt"
    tmux(fleet_env, "send-keys", "-t", "=a1:", "-l", "--",
         f'echo "$GREETING|$SHARED|$PWD" > {out}')  # fmt: skip
    tmux(fleet_env, "send-keys", "-t", "=a1:", "Enter")
    wait_until(out.exists)
    assert wait_until(lambda: out.read_text()) == f"hi there|from-defaults|{work}\n"


def test_remove_stops_a_running_agent_first(fleet_env: dict[str, str]) -> None:
    write_roster(fleet_env, shell_roster(["a1", "a2"]))
    ok(fleet_env, "start")
    a1 = wait_until(lambda: running(fleet_env, "a1"))
    out = ok(fleet_env, "remove", "a1").out
    assert "a1: stopped" in out and "removed a1" in out
    assert not pid_alive(int(str(a1["pid"])))
    assert sessions(fleet_env) == ["a2"]
    assert [r["name"] for r in status(fleet_env)["agents"]] == ["a2"]
    assert agent(fleet_env, "a2")["state"] == "running"


def test_transcript_rotates_and_stays_bounded(fleet_env: dict[str, str]) -> None:
    cap = 16384
    env = dict(fleet_env, MOSAIC_FLEET_LOG_MAX_BYTES=str(cap))
    write_roster(env, shell_roster(["a1"]))
    ok(env, "start")
    wait_until(lambda: running(env, "a1"))
    tmux(env, "send-keys", "-t", "=a1:", "-l", "--",
         "for i in $(seq 3000); do echo line-$i-xxxxxxxxxxxxxxxxxxxx; done; echo done-$((1+1))")
    tmux(env, "send-keys", "-t", "=a1:", "Enter")
    logs = Path(env["MOSAIC_HOME"]) / "fleet" / "logs"
    wait_until(lambda: "done-2" in ok(env, "logs", "a1", "-n", "3").out, timeout=30)
    current, rotated = logs / "a1.log", logs / "a1.log.1"
    assert rotated.exists()  # ~100 KiB of output went through a 16 KiB cap
    assert current.stat().st_size <= cap and rotated.stat().st_size <= cap
    assert rotated.stat().st_mode & 0o777 == 0o600


def test_old_tmux_is_a_clear_error_and_starts_nothing(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    import shutil

    real = shutil.which("tmux")
    bindir = tmp_path / "oldbin"
    bindir.mkdir()
    shim = bindir / "tmux"
    shim.write_text(
        f'#!/bin/sh\n[ "$1" = -V ] && {{ echo "tmux 3.1c"; exit 0; }}\nexec "{real}" "$@"\n'
    )
    shim.chmod(0o755)
    env = dict(fleet_env, PATH=f"{bindir}:{fleet_env['PATH']}")
    write_roster(env, shell_roster(["a1"]))
    res = mosaic(env, "start")
    assert res.code == 2
    assert "tmux 3.2 or newer is required, found 3.1" in res.err
    assert "Traceback" not in res.err
    assert sessions(fleet_env) == []


def test_tmux_version_parsing() -> None:
    from mosaic.tmux.client import parse_version

    assert parse_version("tmux 3.3a") == (3, 3)
    assert parse_version("tmux next-3.5") == (3, 5)
    assert parse_version("tmux master") == (0, 0)


def test_every_file_a_running_fleet_writes_is_private(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """Directories 0700, files 0600 (the tick script 0700), the database and the hooks'
    error log included — whatever the caller's umask. The roster lives elsewhere, so that
    everything under <home>/fleet is mosaic's own doing."""
    roster = tmp_path / "roster.yaml"
    roster.write_text(shell_roster(["a1"]))
    fleet_env["MOSAIC_FLEET_ROSTER"] = str(roster)
    env = dict(fleet_env)
    old = os.umask(0o022)
    try:
        ok(env, "start")
    finally:
        os.umask(old)
    wait_until(lambda: running(fleet_env, "a1"), what="a1 running")
    # A crash makes the pane-died hook run, so anything it writes exists by now.
    os.kill(int(agent(fleet_env, "a1")["pid"]), signal.SIGKILL)
    wait_until(lambda: agent(fleet_env, "a1")["restarts"] == 1, timeout=20, what="respawn")
    fleet_dir = Path(fleet_env["MOSAIC_HOME"]) / "fleet"
    loose = []
    for path in [fleet_dir, *fleet_dir.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        want = 0o700 if path.is_dir() or path.name == "tmux-tick" else 0o600
        if mode != want:
            loose.append(f"{path.relative_to(fleet_dir)}: {mode:o}")
    assert (fleet_dir / "run" / "hooks.err").exists()
    assert loose == []
    ok(fleet_env, "stop")
