"""Run every bench case (bench/case_*.py) and print value, baseline and ratio for each.

Usage: python bench/run.py [CASE_SUBSTRING ...]    (use the venv's python)
Exit status is 1 when a case misses its target ratio.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import Row  # noqa: E402


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} {unit}"


def main(argv: list[str]) -> int:
    wanted = argv[1:]
    modules = sorted(p.stem for p in HERE.glob("case_*.py"))
    rows: list[Row] = []
    for name in modules:
        if wanted and not any(w in name for w in wanted):
            continue
        module = importlib.import_module(name)
        print(f"# {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run())
    header = f"{'case':<44} {'value':>12} {'baseline':<34} {'ratio':>7} {'target':>7}  ok"
    print(header)
    print("-" * len(header))
    failed = False
    for r in rows:
        target = f"{r.target:.2f}" if r.target is not None else "-"
        ok = {None: "", True: "yes", False: "NO"}[r.ok]
        failed |= r.ok is False
        base = f"{r.baseline_name} ({_fmt(r.baseline, r.unit)})"
        value = _fmt(r.value, r.unit)
        print(f"{r.case:<44} {value:>12} {base:<34} {r.ratio:>7.2f} {target:>7}  {ok}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
