"""`mosaic fleet apply` under the systemd supervisor, against a real private user manager
(systemd_harness): unit files and drop-ins change only where the roster changed, systemd
sees the new settings, and every other unit keeps running untouched (same MainPID)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleetkit import ok, sessions, status, write_roster
from helpers import pid_alive, wait_until
from mosaic.supervise.systemd import units
from systemd_harness import UserManager, user_manager

__all__ = ["user_manager"]  # the fixture, imported for pytest

V1 = """\
version: 1
agents:
  - name: same
    runtime: shell
  - name: pol
    runtime: shell
  - name: envy
    runtime: shell
    env: {MARK: one}
  - name: gone
    runtime: shell
"""
V2 = (
    V1.replace("  - name: pol\n    runtime: shell\n",
               "  - name: pol\n    runtime: shell\n    restart: always\n")
    .replace("{MARK: one}", "{MARK: two}")
    .replace("  - name: gone\n", "  - name: new\n")
)  # fmt: skip


@pytest.fixture
def env(user_manager: UserManager, fleet_env: dict[str, str]) -> dict[str, str]:
    e = user_manager.env_for(fleet_env)
    e["MOSAIC_FLEET_SUPERVISOR"] = "systemd"
    return e


def unit_files(m: UserManager) -> dict[str, tuple[bytes, int]]:
    """Every file under the unit directory: its bytes and inode (a rewrite changes it)."""
    return {
        str(p.relative_to(m.unit_dir)): (p.read_bytes(), p.stat().st_ino)
        for p in sorted(m.unit_dir.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def main_pids(m: UserManager, names: list[str]) -> dict[str, str]:
    unit_names = [units.HOLDER_UNIT, *(units.agent_unit(n) for n in names)]
    return {u: m.prop(u, "MainPID") for u in unit_names}


def rows(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in status(env)["agents"]}


def all_running(env: dict[str, str]) -> dict[str, dict[str, Any]] | None:
    current = rows(env)
    return current if all(r["state"] == "running" for r in current.values()) else None


def apply_json(env: dict[str, str], *flags: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok(env, "apply", "--json", *flags).out)
    return doc


def dropin(name: str) -> str:
    return f"{units.agent_unit(name)}.d/{units.DROPIN_NAME}"


def test_units_change_only_where_the_roster_did(
    user_manager: UserManager, env: dict[str, str]
) -> None:
    m = user_manager
    write_roster(env, V1)
    ok(env, "install")
    ok(env, "start")
    before = wait_until(lambda: all_running(env), timeout=30, what="v1 running")
    # Recorded by the units themselves, in the manager's environment (another HOME and
    # SHELL than this shell's here): still no drift, as no roster edit was made.
    reasons = [r["drift_reason"] for r in before.values()]
    assert reasons == [None] * 4, reasons
    assert apply_json(env, "--dry-run")["changes"] == 0

    write_roster(env, V2)
    files = unit_files(m)
    pids = main_pids(m, ["same", "pol", "envy", "gone"])
    planned = apply_json(env, "--dry-run")
    # The dry run changed nothing: files byte for byte (same inodes), units, runtimes.
    assert unit_files(m) == files
    assert main_pids(m, ["same", "pol", "envy", "gone"]) == pids
    assert {n: r["pid"] for n, r in rows(env).items() if n != "new"} == {
        n: r["pid"] for n, r in before.items() if n != "gone"
    }
    assert sessions(env) == ["envy", "gone", "pol", "same"]
    unit_dir = str(m.unit_dir)
    expected_units = [
        {"target": f"{unit_dir}/{dropin('pol')}", "action": "update"},
        {"target": f"{unit_dir}/{dropin('new')}", "action": "create"},
        {"target": f"{unit_dir}/{dropin('gone')}", "action": "remove"},
        {"target": units.agent_unit("gone"), "action": "disable"},
        {"target": units.agent_unit("new"), "action": "enable"},
    ]
    assert planned["units"] == expected_units
    assert {a["name"]: a["action"] for a in planned["agents"]} == {
        "same": "unchanged", "pol": "restart", "envy": "restart", "new": "start",
        "gone": "stop",
    }  # fmt: skip

    done = apply_json(env)
    assert done["ok"] and done["units"] == expected_units, done
    after = wait_until(lambda: all_running(env), timeout=30, what="v2 running")
    now = unit_files(m)
    # Only the lagging drop-ins were written; the holder, the template and the drop-in of
    # the unchanged agent are the very same files.
    for name in (units.HOLDER_UNIT, units.AGENT_TEMPLATE, dropin("same"), dropin("envy")):
        assert now[name] == files[name], name
    assert b"Restart=always" in now[dropin("pol")][0]
    assert dropin("new") in now and dropin("gone") not in now
    assert m.prop(units.agent_unit("pol"), "Restart") == "always"
    assert m.prop(units.agent_unit("same"), "Restart") == "on-failure"
    assert m.prop(units.agent_unit("new"), "UnitFileState") == "enabled"
    # Untouched: the holder and the unchanged agent's unit and runtime.
    assert m.prop(units.HOLDER_UNIT, "MainPID") == pids[units.HOLDER_UNIT]
    assert m.prop(units.agent_unit("same"), "MainPID") == pids[units.agent_unit("same")]
    assert after["same"]["pid"] == before["same"]["pid"]
    for name in ("pol", "envy"):
        assert after[name]["pid"] != before[name]["pid"] and not pid_alive(before[name]["pid"])
    environ = Path(f"/proc/{after['envy']['pid']}/environ").read_bytes().split(b"\0")
    assert b"MARK=two" in environ
    # What left the roster is stopped, its unit inactive and no longer enabled.
    assert not pid_alive(before["gone"]["pid"])
    assert m.prop(units.agent_unit("gone"), "ActiveState") in ("inactive", "")
    assert sessions(env) == ["envy", "new", "pol", "same"]
    assert not any(r["drift"] for r in after.values())

    again = apply_json(env)
    assert again["changes"] == 0 and again["units"] == []
    assert unit_files(m) == now
    ok(env, "stop")
