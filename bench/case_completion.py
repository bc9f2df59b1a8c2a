"""What a TAB costs: completing agent names on a 50-agent roster, as a ratio to
`mosaic --version` (the cheapest thing the CLI does) timed in the same run.

Measured twice: as answered by the fast path from the names cache (any earlier command
leaves it), and with the caches deleted before every TAB, which pays for click, the YAML
parser and the validator: the first TAB after an edit of the roster.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, median_time, run_cmd, time_cmd
from case_startup import _roster_50


def run() -> list[Row]:
    plain = base_env()
    version = time_cmd([MOSAIC, "--version"], env=plain, repeat=30)
    with tempfile.TemporaryDirectory(prefix="mosaic-bench-") as tmp:
        roster = Path(tmp) / "roster.yaml"
        roster.write_text(_roster_50())
        env = base_env(
            MOSAIC_HOME=tmp,
            MOSAIC_FLEET_ROSTER=str(roster),
            _MOSAIC_COMPLETE="bash_complete",
            COMP_WORDS="mosaic fleet logs agent1",
            COMP_CWORD="3",
        )
        tab = time_cmd([MOSAIC], env=env, repeat=30)
        run_dir = Path(tmp) / "fleet" / "run"

        def cold() -> None:
            for cache in run_dir.glob("*-cache"):
                cache.unlink()
            run_cmd([MOSAIC], env)

        tab_cold = median_time(cold, repeat=10)
    base = "mosaic --version"
    return [
        Row("completion: TAB, agent names (50 agents)", tab, base, version, target=1.5),
        Row("completion: TAB, caches deleted (50 agents)", tab_cold, base, version),
    ]
