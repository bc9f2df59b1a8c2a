"""Helpers for tests that run a real fleet: write a roster, read status, talk to tmux."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from helpers import Result, run_mosaic

PY_CRASH = ["python3", "-c", "import time; time.sleep(0.2); raise SystemExit(4)"]


def write_roster(env: dict[str, str], body: str) -> Path:
    path = Path(env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def shell_roster(names: list[str], extra: str = "") -> str:
    agents = "".join(f"  - name: {n}\n    runtime: shell\n" for n in names)
    return f"version: 1\nagents:\n{agents}{extra}"


def mosaic(env: dict[str, str], *args: str, input: str | bytes | None = None,
           timeout: float = 60.0) -> Result:  # fmt: skip
    return run_mosaic(["fleet", *args], env, input=input, timeout=timeout)


def ok(env: dict[str, str], *args: str, input: str | bytes | None = None) -> Result:
    res = mosaic(env, *args, input=input)
    assert res.code == 0, f"mosaic fleet {' '.join(args)} -> {res.code}\n{res.out}\n{res.err}"
    return res


def status(env: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok(env, "status", "--json").out)
    return doc


def agent(env: dict[str, str], name: str) -> dict[str, Any]:
    for row in status(env)["agents"]:
        if row["name"] == name:
            return dict(row)
    raise AssertionError(f"{name} not in status")


def tmux(env: dict[str, str], *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["tmux", "-L", env["MOSAIC_TMUX_SOCKET"], *args],
        env=env, capture_output=True, text=True, timeout=15, check=check,
    )  # fmt: skip
    return proc.stdout


def sessions(env: dict[str, str]) -> list[str]:
    """The agents' sessions (the watcher's own `_watcher` session is not an agent's)."""
    out = tmux(env, "list-sessions", "-F", "#{session_name}", check=False)
    return sorted(s for s in out.split() if not s.startswith("_"))
