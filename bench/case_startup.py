"""Start-up cost of the CLI, as a ratio to a bare interpreter from the same venv.

`mosaic --version` shows what the entry point costs before any command runs. `fleet validate`
on a 50-agent roster is measured twice: as run again on an unchanged roster (the fast path,
answered from the outcome cache without click), and cold, with the caches deleted before
every run, which pays for click, ruamel.yaml and the validator: what an edited roster costs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, median_time, run_cmd, time_cmd


def _roster_50() -> str:
    agents = "".join(
        f'  - name: agent{i:02d}\n    runtime: demo\n    args: ["--think", "1"]\n'
        f"    env: {{SLOT: '{i}'}}\n"
        for i in range(50)
    )
    return f"version: 1\ntmux_socket: bench\ndefaults:\n  env: {{EDITOR: vi}}\nagents:\n{agents}"


def run() -> list[Row]:
    plain = base_env()
    baseline = time_cmd([sys.executable, "-c", "pass"], env=plain, repeat=30)
    version = time_cmd([MOSAIC, "--version"], env=plain, repeat=30)
    with tempfile.TemporaryDirectory(prefix="mosaic-bench-") as tmp:
        roster = Path(tmp) / "roster.yaml"
        roster.write_text(_roster_50())
        env = base_env(MOSAIC_HOME=tmp, MOSAIC_FLEET_ROSTER=str(roster))
        argv = [MOSAIC, "fleet", "validate"]
        validate = time_cmd(argv, env=env, repeat=30)
        run_dir = Path(tmp) / "fleet" / "run"

        def cold() -> None:
            for cache in run_dir.glob("*-cache"):
                cache.unlink()
            run_cmd(argv, env)

        validate_cold = median_time(cold, repeat=15)
    base = "python -c pass"
    return [
        Row("startup: mosaic --version", version, base, baseline, target=1.5),
        Row("startup: mosaic fleet validate (50 agents)", validate, base, baseline, target=2.5),
        Row("startup: validate, caches deleted (50 agents)", validate_cold, base, baseline),
    ]
