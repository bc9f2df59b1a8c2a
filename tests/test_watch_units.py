"""The watcher's systemd unit: golden file, `systemd-analyze verify`, install/uninstall plans.

Regenerate the golden file after an intended change with
`MOSAIC_UPDATE_GOLDEN=1 pytest tests/test_watch_units.py` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

from mosaic.supervise.systemd import install, units
from test_units import (
    CTX,
    ROSTER,
    _installed_after,
    _real_context,
    _verify,
    check_golden,
    needs_analyze,
)


def test_watcher_unit_golden() -> None:
    check_golden("mosaic-watcher.service", units.render_watcher(CTX))


def test_watcher_unit_is_bound_to_the_holder_and_always_restarted() -> None:
    text = units.render_watcher(CTX)
    assert f"BindsTo={units.HOLDER_UNIT}" in text and f"After={units.HOLDER_UNIT}" in text
    assert "Restart=always" in text
    assert "ExecStart=/opt/mosaic/venv/bin/python -m mosaic.watch" in text


@needs_analyze
def test_watcher_unit_verifies_silently(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    for path, text in units.render_all(_real_context(tmp_path), ROSTER, unit_dir).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = _verify(unit_dir, [units.WATCHER_UNIT, units.HOLDER_UNIT])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""


def test_install_enables_and_uninstall_stops_the_watcher() -> None:
    first = install.compute_install_plan(CTX, ROSTER, install.InstalledState(Path("/u")))
    assert units.WATCHER_UNIT in first.enable
    assert Path("/u") / units.WATCHER_UNIT in {w.path for w in first.writes}
    state = _installed_after(first)
    gone = install.compute_uninstall_plan(state, loaded=[units.HOLDER_UNIT, units.WATCHER_UNIT])
    assert gone.stop == (units.WATCHER_UNIT, units.HOLDER_UNIT)
    assert Path("/u") / units.WATCHER_UNIT in gone.remove_files
    assert units.WATCHER_UNIT in gone.disable
