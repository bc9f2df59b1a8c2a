"""`mosaic fleet apply` through the real CLI on a real tmux-supervised fleet: one roster
edit per kind of change, checked in the running processes themselves (/proc), and every
agent the edit does not concern left exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from fleetkit import mosaic, ok, sessions, status, tmux, write_roster
from helpers import MOSAIC, wait_until
from mosaic.agents import state
from mosaic.agents.state import AgentState
from mosaic.config.paths import Paths

PYREPL = """\
runtimes:
  pyrepl:
    command: ["python3", "-q", "-i"]
    processes: ["python3"]
"""


def roster_v1(d1: Path) -> str:
    return f"""\
version: 1
agents:
  - name: keep
    runtime: shell
  - name: e
    runtime: shell
    env: {{MARK: one}}
  - name: g
    runtime: shell
    args: ["--norc"]
  - name: r
    runtime: shell
  - name: w
    runtime: shell
    workdir: {d1}
  - name: p
    runtime: shell
  - name: gone
    runtime: shell
{PYREPL}"""


def roster_v2(d1: Path, d2: Path) -> str:
    text = roster_v1(d1)
    text = text.replace("{MARK: one}", "{MARK: two}")
    text = text.replace('["--norc"]', '["--norc", "--noprofile"]')
    text = text.replace("  - name: r\n    runtime: shell\n", "  - name: r\n    runtime: pyrepl\n")
    text = text.replace(f"workdir: {d1}", f"workdir: {d2}")
    text = text.replace("  - name: p\n    runtime: shell\n",
                        "  - name: p\n    runtime: shell\n    restart: always\n")  # fmt: skip
    text = text.replace("  - name: gone\n", "  - name: new\n")
    return text


def paths_of(env: dict[str, str]) -> Paths:
    home = Path(env["MOSAIC_HOME"])
    return Paths(home, home / "fleet" / "roster.yaml")


def records(env: dict[str, str]) -> dict[str, AgentState]:
    return state.read_all(paths_of(env))


def rows(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in status(env)["agents"]}


def all_running(env: dict[str, str]) -> dict[str, dict[str, Any]] | None:
    current = rows(env)
    return current if all(r["state"] == "running" for r in current.values()) else None


def pids(env: dict[str, str]) -> dict[str, int]:
    """Every agent session's pane pid, roster or not, straight from tmux (the watcher's own
    `_watcher` session is not an agent's)."""
    out = tmux(env, "list-panes", "-a", "-F", "#{session_name} #{pane_pid}", check=False)
    rows = (line.split() for line in out.splitlines())
    return {name: int(pid) for name, pid in rows if not name.startswith("_")}


def screen(env: dict[str, str], name: str) -> str:
    return tmux(env, "capture-pane", "-p", "-t", f"={name}:")


def apply_json(env: dict[str, str], *flags: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok(env, "apply", "--json", *flags).out)
    return doc


def actions(doc: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {a["name"]: (a["action"], a["reasons"]) for a in doc["agents"]}


def test_each_kind_of_change_is_applied_and_nothing_else_is_touched(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_env
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    d1.mkdir()
    d2.mkdir()
    write_roster(env, roster_v1(d1))
    first = apply_json(env)  # an empty fleet: apply starts everything
    assert {a["action"] for a in first["agents"]} == {"start"} and first["ok"]
    before = wait_until(lambda: all_running(env), timeout=20, what="v1 running")
    assert not any(r["drift"] for r in before.values())
    keep_screen = screen(env, "keep")

    write_roster(env, roster_v2(d1, d2))
    drifted = rows(env)
    assert {n for n, r in drifted.items() if r["drift"]} == {"e", "g", "r", "w", "p"}
    assert drifted["e"]["drift_reason"] == "env MARK changed"
    assert drifted["keep"]["drift_reason"] is None
    assert "env MARK changed" in ok(dict(env, COLUMNS="200"), "status").out

    # A dry run plans, and changes nothing: same pids, same records.
    recs = records(env)
    planned = apply_json(env, "--dry-run")
    assert planned["dry_run"] is True
    assert pids(env) == {n: r["pid"] for n, r in before.items()}
    assert records(env) == recs
    assert sessions(env) == sorted(before)
    expected = {
        "keep": ("unchanged", []),
        "e": ("restart", ["env MARK changed"]),
        "g": ("restart", ["args changed"]),
        "r": ("restart", ["runtime shell → pyrepl"]),
        "w": ("restart", [f"workdir {d1} → {d2}"]),
        "p": ("restart", ["restart on-failure → always"]),
        "new": ("start", ["not running"]),
        "gone": ("stop", ["left the roster"]),
    }
    assert actions(planned) == expected

    done = apply_json(env)
    assert actions(done) == expected and done["ok"], done
    assert {a["name"]: a["result"] for a in done["agents"]} == {
        n: (None if n == "keep" else "ok") for n in expected
    }
    after = wait_until(lambda: all_running(env), timeout=20, what="v2 running")
    assert sorted(after) == ["e", "g", "keep", "new", "p", "r", "w"]
    assert sessions(env) == sorted(after)  # gone's session went with it
    # The unchanged agent: same process, same screen (nothing typed), same record.
    assert after["keep"]["pid"] == before["keep"]["pid"]
    assert screen(env, "keep") == keep_screen
    assert records(env)["keep"] == recs["keep"]
    for name in ("e", "g", "r", "w", "p"):
        assert after[name]["pid"] != before[name]["pid"], name
        assert not Path(f"/proc/{before[name]['pid']}").exists(), name
    # Each change reached the running process.
    environ = Path(f"/proc/{after['e']['pid']}/environ").read_bytes().split(b"\0")
    assert b"MARK=two" in environ
    cmdline = Path(f"/proc/{after['g']['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"--noprofile" in cmdline
    assert Path(f"/proc/{after['r']['pid']}/comm").read_text().startswith("python3")
    assert os.readlink(f"/proc/{after['w']['pid']}/cwd") == str(d2)
    assert str(records(env)["p"].restart_policy) == "always"
    assert "gone" not in records(env)
    # An agent apply stopped was stopped by an operator, as far as the event log goes.
    lines = ok(env, "events", "--type", "stopped", "--json").out.splitlines()
    assert "gone" in [json.loads(line)["agent"] for line in lines]
    assert not any(r["drift"] for r in after.values())

    # Applying again finds nothing to do and touches nothing.
    again = apply_json(env)
    assert again["changes"] == 0 and {a["action"] for a in again["agents"]} == {"unchanged"}
    assert pids(env) == {n: r["pid"] for n, r in after.items()}
    assert "nothing to do" in ok(env, "apply").out


def test_a_roster_with_errors_applies_nothing(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = fleet_env
    write_roster(env, "version: 1\nagents:\n  - name: a1\n    runtime: shell\n")
    ok(env, "apply")
    before = wait_until(lambda: all_running(env), what="a1 running")
    roster = write_roster(
        env, "version: 1\nagents:\n  - name: a1\n    runtime: shell\n    colour: red\n"
        "  - name: a2\n    runtime: shell\n",
    )  # fmt: skip
    res = mosaic(env, "apply")
    assert res.code == 2
    assert f"{roster}:5:5:" in res.err and "Traceback" not in res.err
    assert sessions(env) == ["a1"] and pids(env) == {"a1": before["a1"]["pid"]}

    # A roster that loads but names a workdir that does not exist: nothing either, not even
    # the restart of the agent whose change is fine.
    missing = tmp_path / "nowhere"
    write_roster(
        env, "version: 1\nagents:\n  - name: a1\n    runtime: shell\n    env: {X: y}\n"
        f"  - name: a2\n    runtime: shell\n    workdir: {missing}\n",
    )  # fmt: skip
    res = mosaic(env, "apply")
    assert res.code == 2 and str(missing) in res.err and "Traceback" not in res.err
    assert sessions(env) == ["a1"] and pids(env)["a1"] == before["a1"]["pid"]


def _holders(lock: Path, until: subprocess.Popen[bytes], seen: list[int]) -> None:
    from mosaic.supervise.restartlock import current_holder

    while until.poll() is None:
        holder = current_holder(lock)
        if holder is not None and holder.pid is not None and holder.pid not in seen:
            seen.append(holder.pid)
        time.sleep(0.02)


STUBBORN = """\
runtimes:
  stubborn:
    # Ignores the quit keys: every stop waits out their grace, so a restart takes a while.
    command: ["bash", "--norc", "-c", "trap '' INT; while :; do read -r x || sleep 0.1; done"]
    processes: ["bash"]
    quit_keys: ["C-c"]
"""


def test_apply_waits_for_a_running_restart_and_then_plans(fleet_env: dict[str, str]) -> None:
    """apply and restart serialize on the restart lock: an apply started while a restart
    runs plans only after it, so it finds the roster already applied and touches nothing."""
    env = fleet_env
    body = "version: 1\nagents:\n" + "".join(
        f"  - name: s{i}\n    runtime: stubborn\n    env: {{GEN: '1'}}\n" for i in range(2)
    )
    write_roster(env, body + STUBBORN)
    ok(env, "apply")
    wait_until(lambda: all_running(env), what="fleet running")
    write_roster(env, body.replace("GEN: '1'", "GEN: '2'") + STUBBORN)

    lock = paths_of(env).restart_lock
    restart = subprocess.Popen([*MOSAIC, "fleet", "restart"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    seen: list[int] = []
    from mosaic.supervise.restartlock import current_holder

    wait_until(lambda: (h := current_holder(lock)) is not None and h.pid == restart.pid,
               timeout=30, interval=0.005, what="restart inside the lock")  # fmt: skip
    apply = subprocess.Popen([*MOSAIC, "fleet", "apply", "--json"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _holders(lock, apply, seen)
    out, err = apply.communicate(timeout=60)
    _, r_err = restart.communicate(timeout=60)
    assert restart.returncode == 0, r_err.decode()
    assert apply.returncode == 0, err.decode()
    # apply may hold the lock too briefly to be seen; it must never be seen before restart.
    assert seen[0] == restart.pid and set(seen) <= {restart.pid, apply.pid}, seen
    doc = json.loads(out)
    # Planned after the restart had started both agents with GEN=2: nothing left to do.
    assert actions(doc) == {"s0": ("unchanged", []), "s1": ("unchanged", [])}
    assert b"overrid" not in err + r_err
    assert sessions(env) == ["s0", "s1"]
    running = wait_until(lambda: all_running(env), what="fleet running")
    for row in running.values():
        environ = Path(f"/proc/{row['pid']}/environ").read_bytes().split(b"\0")
        assert b"GEN=2" in environ


def test_restart_waits_for_a_running_apply(fleet_env: dict[str, str]) -> None:
    env = fleet_env
    body = "version: 1\nagents:\n" + "".join(
        f"  - name: s{i}\n    runtime: stubborn\n    env: {{GEN: '1'}}\n" for i in range(2)
    )
    write_roster(env, body + STUBBORN)
    ok(env, "apply")
    first = wait_until(lambda: all_running(env), what="fleet running")
    write_roster(env, body.replace("GEN: '1'", "GEN: '2'") + STUBBORN)

    lock = paths_of(env).restart_lock
    apply = subprocess.Popen([*MOSAIC, "fleet", "apply", "--json"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    from mosaic.supervise.restartlock import current_holder

    wait_until(lambda: (h := current_holder(lock)) is not None and h.pid == apply.pid,
               timeout=30, interval=0.005, what="apply inside the lock")  # fmt: skip
    restart = subprocess.Popen([*MOSAIC, "fleet", "restart"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    seen: list[int] = []
    _holders(lock, restart, seen)
    out, err = apply.communicate(timeout=60)
    r_out, r_err = restart.communicate(timeout=60)
    assert apply.returncode == 0 and restart.returncode == 0, (err, r_err)
    assert seen[:2] == [apply.pid, restart.pid], seen
    assert {a["action"] for a in json.loads(out)["agents"]} == {"restart"}
    # The restart's stop found apply's agents up (it ran after apply, not in the middle):
    # each agent was stopped by the restart, none reported "not running".
    lines = r_out.decode().splitlines()
    assert "s0: stopped" in lines and "s1: stopped" in lines, lines
    assert sessions(env) == ["s0", "s1"]
    last = wait_until(lambda: all_running(env), what="fleet running")
    assert all(last[n]["pid"] != first[n]["pid"] for n in last)
