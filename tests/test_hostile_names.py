"""Text from outside reaches no shell and no tmux command position: hostile session names
on the fleet's socket, a forged process name in an agent's pane, and roster values that
look like tmux syntax. Real tmux, real bash and python agents, the tmux supervisor.

Every payload tries to create a file in a trap directory; a test fails if any file shows
up there. "Nothing ran" is only concluded after a later marker: a real agent's crash is
handled by the same pane-died hook, and its restart (half a second of backoff after its
hook ran) comes after the hostile panes' hooks, which fired first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetkit import agent, ok, sessions, shell_roster, status, tmux, write_roster
from helpers import pid_alive, run_mosaic, wait_until

# Each name is one a careless hook (`run-shell "... #{session_name} ..."`) would have run.
# `{T}` is the trap directory (mkdtemp names have no `.`, which tmux turns into `_`).
HOSTILE = [
    "x;touch pwned1;#",
    "$(touch pwned2)",
    "`touch pwned3`",
    "a'b\"c;touch pwned4;'",
    "n\ntouch pwned5",
    "#{session_name};touch pwned6",
    "#(touch pwned7)",
    "%1;touch pwned8",
    "-x;touch pwned9",
    "y\x1ftouch pwned10;#",
    "z;touch {T}/pwned11",
    "zz9",  # an agent's name, in no roster: nothing of ours may supervise it
]


@pytest.fixture
def trap() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mh", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def running(env: dict[str, str], name: str) -> dict[str, Any] | None:
    row = agent(env, name)
    return row if row["state"] == "running" and row["pid"] else None


def new_session(env: dict[str, str], name: str, cwd: Path, *command: str) -> None:
    """A session someone else makes on the fleet's socket. `new-session -s` expands
    formats, so `#` is doubled to give the session exactly `name`."""
    tmux(env, "new-session", "-d", "-s", name.replace("#", "##"), "-c", str(cwd),
         "--", *command)  # fmt: skip


def crash_and_wait_for_restart(env: dict[str, str], name: str) -> None:
    """The marker: the hook handles a real agent's crash after the earlier panes' hooks."""
    first = wait_until(lambda: running(env, name), what=f"{name} running")
    os.kill(first["pid"], signal.SIGKILL)
    wait_until(lambda: (r := running(env, name)) and r["pid"] != first["pid"],
               timeout=20, what=f"{name} restarted by the hook")  # fmt: skip


def pane_rows(env: dict[str, str]) -> list[tuple[str, str]]:
    out = tmux(env, "list-panes", "-a", "-F", "#{pane_dead}\x1f#{session_name}")
    return [(line[:1], line[2:]) for line in out.split("\n") if line]


def trapped(*dirs: Path) -> list[Path]:
    return sorted(p for d in dirs if d.exists() for p in d.iterdir())


def test_hostile_session_names_run_nothing_and_the_fleet_keeps_working(
    fleet_env: dict[str, str], trap: Path
) -> None:
    write_roster(fleet_env, shell_roster(["a1", "a2"]))
    ok(fleet_env, "start")
    a2 = wait_until(lambda: running(fleet_env, "a2"), what="a2 running")
    ours = {s for _, s in pane_rows(fleet_env)}
    for name in HOSTILE:
        new_session(fleet_env, name.replace("{T}", str(trap)), trap,
                    "sh", "-c", "sleep 0.2; exit 3")  # fmt: skip
    hostile = [s for _, s in pane_rows(fleet_env) if s not in ours]
    assert len(hostile) == len(HOSTILE), hostile
    wait_until(lambda: all(dead == "1" for dead, s in pane_rows(fleet_env) if s in hostile),
               what="every hostile pane dead")  # fmt: skip

    crash_and_wait_for_restart(fleet_env, "a1")

    assert trapped(trap) == []
    home = Path(fleet_env["HOME"])
    assert not list(home.glob("pwned*")) and not list(Path.cwd().glob("pwned*"))
    doc = status(fleet_env)
    assert [r["name"] for r in doc["agents"]] == ["a1", "a2"]
    assert agent(fleet_env, "a2")["pid"] == a2["pid"]
    # The session with an agent's name that no roster has was left dead, not respawned.
    assert ("1", "zz9") in pane_rows(fleet_env)
    hooks_log = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "run" / "hooks.err"
    assert "Traceback" not in (hooks_log.read_text() if hooks_log.exists() else "")
    out = ok(fleet_env, "stop").out  # every session on the socket, hostile ones too
    assert "holder: stopped" in out
    assert sessions(fleet_env) == []
    assert trapped(trap) == []


# What mosaic 0.1 wrote: the hook put the session name into the shell command.
OLD_CONF = """\
set -s exit-empty off
set -g remain-on-exit on
set-hook -gw pane-died {
  run-shell -b '"$MOSAIC_HOOK_PYTHON" -m mosaic.hooks pane-died #{session_name} #{pane_id} "#{pane_dead_status}" "#{pane_dead_signal}" 2>>"$MOSAIC_HOME/fleet/run/hooks.err"'
}
run-shell -b -d 1 'exec "$MOSAIC_HOME/fleet/run/tmux-tick"'
"""  # noqa: E501
# 0.1's tick, which its server ran every 2 s (tmux 3.3a reaps exited panes only then).
OLD_TICK = """\
#!/bin/sh
exec tmux run-shell -b -d 2 'exec "$MOSAIC_HOME/fleet/run/tmux-tick"'
"""


def test_a_server_started_with_the_old_hook_gets_the_safe_one_at_the_next_start(
    fleet_env: dict[str, str], trap: Path, tmp_path: Path
) -> None:
    conf = tmp_path / "old.conf"
    conf.write_text(OLD_CONF)
    tick = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "run" / "tmux-tick"
    tick.parent.mkdir(parents=True)
    tick.write_text(OLD_TICK)
    tick.chmod(0o700)
    server_env = dict(fleet_env, MOSAIC_HOOK_PYTHON=sys.executable)
    subprocess.run(["tmux", "-L", fleet_env["MOSAIC_TMUX_SOCKET"], "-f", str(conf),
                    "start-server"], env=server_env, check=True, timeout=15)  # fmt: skip
    tmux(fleet_env, "set-environment", "-g", "MOSAIC_FLEET_SUPERVISOR", "tmux")  # as 0.1 did
    # The old hook really runs what a session's name says (this is what is being fixed).
    new_session(fleet_env, "old;touch before;#", trap, "sh", "-c", "exit 3")
    wait_until(lambda: (trap / "before").exists(), what="the old hook ran the name")
    (trap / "before").unlink()

    write_roster(fleet_env, shell_roster(["a1"]))
    ok(fleet_env, "start")  # the server is running already: only its hook is replaced
    new_session(fleet_env, "new;touch after;#", trap, "sh", "-c", "sleep 0.2; exit 3")
    wait_until(lambda: ("1", "new;touch after;#") in pane_rows(fleet_env), what="pane dead")
    crash_and_wait_for_restart(fleet_env, "a1")
    assert trapped(trap) == []
    # Panes inherit the server's environment: 0.1's supervisor setting is gone from it.
    assert "MOSAIC_FLEET_SUPERVISOR" not in tmux(fleet_env, "show-environment", "-g")
    ok(fleet_env, "stop")


def test_a_forged_process_name_cannot_pass_for_another_agent(
    fleet_env: dict[str, str],
) -> None:
    """tmux reports a pane's foreground command as its argv[0], verbatim: one with a newline
    and field separators used to add a row for agent b1 with a pid of its choosing, which
    `status` showed and `stop b1` then killed."""
    write_roster(fleet_env, shell_roster(["a1", "b1"]))
    ok(fleet_env, "start")
    b1 = wait_until(lambda: running(fleet_env, "b1"), what="b1 running")
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        forged = f"x\nb1\x1f%99\x1f{bystander.pid}\x1fbash"
        printf = forged.replace("\n", "\\n").replace("\x1f", "\\037").replace("%", "%%")
        tmux(fleet_env, "send-keys", "-t", "=a1:", "-l", "--",
             f"(exec -a \"$(printf '{printf}')\" sleep 300)")  # fmt: skip
        tmux(fleet_env, "send-keys", "-t", "=a1:", "Enter")
        wait_until(
            lambda: tmux(fleet_env, "display-message", "-p", "-t", "=a1:",
                          "#{pane_current_command}").startswith("x\n"),
            what="tmux reporting the forged name",
        )  # fmt: skip
        rows = {r["name"]: r for r in status(fleet_env)["agents"]}
        assert rows["b1"]["pid"] == b1["pid"]
        assert rows["a1"]["state"] == "running"  # its own row survived the odd name too
        out = ok(fleet_env, "stop", "b1").out
        assert "b1: stopped" in out
        assert pid_alive(bystander.pid)
        assert not pid_alive(b1["pid"])
        assert running(fleet_env, "a1")
    finally:
        bystander.kill()
        bystander.wait()
    ok(fleet_env, "stop")


RECORDER = (
    "import json, os, sys, time\n"
    "json.dump({'argv': sys.argv[1:], 'cwd': os.getcwd(), 'E1': os.environ['E1'],"
    " 'E2': os.environ['E2']}, open(os.environ['OUT'], 'w'))\n"
    "time.sleep(300)\n"
)


def test_roster_values_reach_tmux_as_plain_arguments(
    fleet_env: dict[str, str], trap: Path
) -> None:
    """An argument ending in `;` would end tmux's command (the rest running as a second
    one), and `new-session -c` expands formats: `#(...)` in a directory name would run."""
    workdir = trap / "w#(touch wpwned)#{session_name}"
    workdir.mkdir()
    out = trap / "seen.json"
    args = ["x;", "run-shell", f"touch {trap}/apwned", ";", "a\\;"]
    body = (
        "version: 1\nagents:\n  - name: rec\n    runtime: rec\n"
        f"    workdir: {json.dumps(str(workdir))}\n"
        f"    args: {json.dumps(args)}\n"
        f"    env: {json.dumps({'OUT': str(out), 'E1': 'v;', 'E2': ';'})}\n"
        "runtimes:\n  rec:\n"
        f"    command: {json.dumps(['python3', '-c', RECORDER])}\n"
        "    processes: [python3]\n"
    )
    write_roster(fleet_env, body)
    # From inside the trap: tmux runs a `#(...)` in its client's working directory.
    res = run_mosaic(["fleet", "start"], fleet_env, cwd=trap)
    assert res.code == 0, res.err
    wait_until(lambda: out.exists() and out.read_text(), what="the runtime's record")
    seen = json.loads(out.read_text())
    assert seen == {"argv": args, "cwd": str(workdir), "E1": "v;", "E2": ";"}
    ok(fleet_env, "stop")
    assert trapped(trap) == sorted([out, workdir])
    assert trapped(workdir) == []


def test_the_old_five_word_hook_call_is_accepted_and_trusts_only_the_pane_id(
    fleet_env: dict[str, str], trap: Path
) -> None:
    """Servers started by mosaic 0.1 call `pane-died NAME PANE STATUS SIGNAL`; the name
    and status words are not believed, the pane is asked."""
    body = shell_roster(["a2"]).replace(
        "agents:\n",
        "agents:\n  - name: a1\n    runtime: once\n    restart: never\n", 1,
    ) + "runtimes:\n  once:\n    command: [python3, -c, 'input(); raise SystemExit(5)']\n" \
        "    processes: [python3]\n"  # fmt: skip
    write_roster(fleet_env, body)
    ok(fleet_env, "start")
    a2 = wait_until(lambda: running(fleet_env, "a2"), what="a2 running")
    wait_until(lambda: running(fleet_env, "a1"), what="a1 running")
    pane = tmux(fleet_env, "display-message", "-p", "-t", "=a1:", "#{pane_id}").strip()
    tmux(fleet_env, "send-keys", "-t", pane, "Enter")
    wait_until(lambda: agent(fleet_env, "a1")["last_exit"] == 5, what="a1 exited 5")
    server_env = dict(fleet_env, MOSAIC_HOOK_PYTHON=sys.executable,
                      MOSAIC_HOOKS_LOG=str(trap / "hooks.err"))  # fmt: skip
    for argv in (["pane-died", "a2", pane, "7", "0"],  # lies about the name and status
                 ["pane-died", "a2", f"{pane};touch {trap}/p", "7", "0"]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "mosaic.hooks", *argv], env=server_env,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        assert done.returncode == 0 and done.stderr == "", done
    assert agent(fleet_env, "a1")["last_exit"] == 5
    row = agent(fleet_env, "a2")
    assert row["last_exit"] is None and row["pid"] == a2["pid"] and row["state"] == "running"
    assert trapped(trap) == []
    bad = subprocess.run([sys.executable, "-m", "mosaic.hooks", "pane-died", "a2", pane],
                         env=server_env, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert bad.returncode == 2 and "usage" in bad.stderr
    ok(fleet_env, "stop")
