"""Commands on remote agents that stream, take a terminal or edit the roster, and hosts whose
mosaic cannot serve this controller."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetkit import mosaic, ok, write_roster
from helpers import MOSAIC, pid_alive, wait_until
from hostlab import VENV_BIN, Lab, all_running, open_lab, recording, rows


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


def _up(lab: Lab, env: dict[str, str], rec: Path, agents: list[tuple[str, str | None]]) -> None:
    write_roster(env, lab.demo_roster(rec, agents))
    ok(env, "start")
    wait_until(lambda: all_running(env, [n for n, _ in agents]), timeout=30, what="running")



def test_logs_follow_streams_from_the_host_and_ends_there_when_we_leave(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    _up(lab, env, tmp_path, [("r1", "h1")])
    out = tmp_path / "logs.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([*MOSAIC, "fleet", "logs", "r1", "-f", "-n", "5"], env=env,
                                stdout=sink, stderr=subprocess.PIPE)  # fmt: skip
    try:

        def got(text: bytes) -> bool:
            return text in out.read_bytes()

        wait_until(lambda: h1.mosaic_pids("logs"), timeout=15, what="remote logs -f")
        ok(env, "send", "r1", "streamed-marker-1")
        wait_until(lambda: got(b"reply #1: streamed-marker-1"), timeout=15,
                   what="the reply, streamed")  # fmt: skip
        remote = h1.mosaic_pids("logs")
        assert remote
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    # The host's `logs -f` notices its reader left, though r1 prints nothing more.
    wait_until(lambda: not any(pid_alive(p) for p in remote), timeout=15,
               what="the host's logs -f gone")  # fmt: skip


def _outer(env: dict[str, str], *args: str) -> str:
    sock = env["MOSAIC_TMUX_SOCKET"] + "-outer"
    return subprocess.run(["tmux", "-L", sock, *args], env=env, capture_output=True,
                          text=True, timeout=15, check=True).stdout  # fmt: skip


def _operator_terminal(env: dict[str, str], command: str) -> None:
    """An outer tmux pane plays the operator's terminal, running `mosaic fleet COMMAND`."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("MOSAIC_", "TMUX_TMPDIR", "PATH")))  # fmt: skip
    _outer(env, "new-session", "-d", "-s", "op", "-x", "120", "-y", "30", "--",
           "sh", "-c", f"{exports} {shlex.quote(sys.executable)} -m mosaic fleet {command}; "
           "sleep 30")  # fmt: skip


def test_watch_and_attach_reach_a_remote_agent_over_ssh_t(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    _up(lab, env, tmp_path, [("r1", "h1")])
    ok(env, "send", "r1", "before watching")
    try:
        _operator_terminal(env, "watch r1")
        wait_until(lambda: "reply #1: before watching" in _outer(env, "capture-pane", "-p"),
                   timeout=15, what="r1's screen in the operator's terminal")  # fmt: skip
        _outer(env, "send-keys", "-t", "op", "-l", "typed while watching")
        _outer(env, "send-keys", "-t", "op", "Enter")
        ok(env, "send", "r1", "after watching")
        wait_until(lambda: "reply #2: after watching" in _outer(env, "capture-pane", "-p"),
                   timeout=15, what="the view is live")  # fmt: skip
        assert recording(tmp_path / "r1.jsonl") == ["before watching", "after watching"]
        # Wait for the old outer server to exit: a dying server unlinks its socket path, which
        # would be the new one's.
        outer_pid = int(_outer(env, "display-message", "-p", "#{pid}").strip())
        _outer(env, "kill-server")
        wait_until(lambda: not pid_alive(outer_pid), timeout=15, what="outer server gone")

        _operator_terminal(env, "attach r1")
        wait_until(lambda: "reply #2" in _outer(env, "capture-pane", "-p"), timeout=15,
                   what="attached")  # fmt: skip
        _outer(env, "send-keys", "-t", "op", "-l", "typed through ssh")
        _outer(env, "send-keys", "-t", "op", "Enter")
        wait_until(lambda: recording(tmp_path / "r1.jsonl")[-1:] == ["typed through ssh"],
                   timeout=15, what="keys typed in the operator's terminal reach r1")  # fmt: skip
        assert "r1" in h1.tmux("list-clients", "-F", "#{session_name}")
    finally:
        subprocess.run(["tmux", "-L", env["MOSAIC_TMUX_SOCKET"] + "-outer", "kill-server"],
                       env=env, capture_output=True, timeout=15)  # fmt: skip


def test_removing_a_remote_agent_stops_it_on_its_host(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    _up(lab, env, tmp_path, [("loc", None), ("r1", "h1")])
    out = ok(env, "remove", "r1").out
    assert "[h1] r1: stopped" in out and "removed r1" in out
    assert h1.agent_sessions() == []
    assert list(rows(env)) == ["loc"]


def test_a_send_across_machines_types_nothing_when_one_target_is_stopped(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    lab.add("h1")
    lab.add("h2")
    env = lab.env(fleet_env)
    _up(lab, env, tmp_path, [("loc", None), ("r1", "h1"), ("r2", "h2")])
    ok(env, "stop", "r2")
    res = mosaic(env, "send", "loc", "r1", "r2", "--json", "to everyone")
    assert res.code == 1
    results = {r["agent"]: (r["host"], r["outcome"]) for r in json.loads(res.out)["results"]}
    assert results == {"loc": ("local", "skipped"), "r1": ("h1", "skipped"),
                       "r2": ("h2", "not_running")}  # fmt: skip
    ok(env, "send", "loc", "r1", "marker")
    for name in ("loc", "r1"):
        wait_until(lambda n=name: recording(tmp_path / f"{n}.jsonl") == ["marker"],  # type: ignore[misc]
                   timeout=15, what=f"{name}: only the later marker")  # fmt: skip


def test_an_agent_added_since_the_last_start_is_stopped_until_started(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    lab.add("h1")
    env = lab.env(fleet_env)
    _up(lab, env, tmp_path, [("r1", "h1")])
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1"), ("r3", "h1")]))
    found = rows(env)
    assert found["r1"]["state"] == "running"
    assert found["r3"]["state"] == "stopped"
    assert "not in the roster on h1" in found["r3"]["reason"]
    ok(env, "start", "r3")
    wait_until(lambda: all_running(env, ["r1", "r3"]), timeout=30, what="r3 started there")


def _fake_mosaic(directory: Path, python: str) -> Path:
    directory.mkdir()
    script = directory / "mosaic"
    interpreter = shlex.quote(str(VENV_BIN / "python"))
    script.write_text(f'#!/bin/sh\nexec {interpreter} -c {shlex.quote(python)} "$@"\n')
    script.chmod(0o755)
    return directory


def test_hosts_whose_mosaic_cannot_serve_this_controller_are_named(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    # A newer release: the real mosaic, reporting version 0.2.0.
    newer = _fake_mosaic(tmp_path / "newer", "import sys, mosaic; mosaic.__version__ = '0.2.0'; "
                         "from mosaic.cli.main import main; sys.exit(main())")  # fmt: skip
    # An older release that predates hosts: click refuses the flag, as old mosaic would
    # (no such release exists to install, so this stand-in prints click's own refusal).
    refusal = ("Usage: mosaic fleet [OPTIONS] COMMAND [ARGS]...\nTry 'mosaic fleet -h' for "
               "help.\n\nError: No such option: --controller-version\n")  # fmt: skip
    older = _fake_mosaic(tmp_path / "older", f"import sys; sys.stderr.write({refusal!r}); "
                         "sys.exit(2)")  # fmt: skip
    lab.add("h1", path_first=newer)
    lab.add("h2", path_first=older)
    env = lab.env(fleet_env)
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1"), ("r2", "h2")]))
    res = mosaic(env, "start")
    assert res.code == 2, res.out + res.err
    assert ("host h1: incompatible mosaic version: mosaic 0.2.0 here, the controller runs "
            "0.1.0; install the controller's release here (pip install "
            "'mosaic-fleet==0.1.*')") in res.err  # fmt: skip
    assert ("host h2: the mosaic there is older than this controller (0.1.0) and cannot "
            "serve it; install the controller's release there (pip install "
            "'mosaic-fleet==0.1.*')") in res.err  # fmt: skip
    doc = json.loads(ok(env, "status", "--json").out)
    assert {a["name"]: a["state"] for a in doc["agents"]} == {"r1": "unknown", "r2": "unknown"}


def test_the_host_side_refuses_another_release_before_doing_anything(
    fleet_env: dict[str, str]
) -> None:
    res = mosaic(fleet_env, "--controller-version", "0.2.1", "init")
    assert res.code == 2
    assert res.err.startswith("incompatible mosaic version: mosaic 0.1.0 here")
    assert not (Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "roster.yaml").exists()
    assert mosaic(fleet_env, "--controller-version", "0.1.7", "init").code == 0
