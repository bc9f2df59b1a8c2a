"""`mosaic fleet send --queue` is answered before click is imported (`cli.quicksend`); what a
script reads, and what is stored, must not depend on which path answered.

Each case runs the fast path (`python -m mosaic ...`, checked with -X importtime to have not
imported click) and the click command itself (`mosaic.cli.main.main`) against the same
fleet, and compares stdout, stderr and exit status byte for byte, with the message ids and
times masked (each run stores its own messages); then the stored messages themselves."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fleetkit import ok, write_roster
from outboxkit import box, demo_roster

_MOVING = re.compile(r'#\d+|"id": \d+|"(queued|expires)_at": "[^"]*"')


def _mask(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.startswith("#"):
        return "#X"
    if text.startswith('"id"'):
        return '"id": 0'
    return f'"{match.group(1)}_at": "X"'


def _run(env: dict[str, str], argv: list[str], stdin: bytes | None, *, via_click: bool
         ) -> tuple[int, str, str, bool]:  # fmt: skip
    if via_click:
        code = "import sys; from mosaic.cli.main import main; sys.exit(main(sys.argv[1:]))"
        cmd = [sys.executable, "-X", "importtime", "-c", code, *argv]
    else:
        cmd = [sys.executable, "-X", "importtime", "-m", "mosaic", *argv]
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, timeout=60)
    lines = proc.stderr.decode().splitlines()
    imports = [ln for ln in lines if ln.startswith("import time:")]
    clicked = any(ln.split("|")[-1].strip() == "click" for ln in imports)
    err = "".join(ln + "\n" for ln in lines if not ln.startswith("import time:"))
    out = _MOVING.sub(_mask, proc.stdout.decode())
    return proc.returncode, out, err, clicked


def _both(env: dict[str, str], *argv: str, stdin: bytes | None = None,
          fast: bool = True) -> tuple[int, str, str]:  # fmt: skip
    quick = _run(env, ["fleet", *argv], stdin, via_click=False)
    slow = _run(env, ["fleet", *argv], stdin, via_click=True)
    assert quick[3] is not fast, f"fleet {' '.join(argv)}: fast path expected: {fast}"
    assert slow[3]
    assert quick[:3] == slow[:3]
    return quick[:3]


@pytest.fixture
def env(fleet_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    write_roster(fleet_env, demo_roster(tmp_path, {"d1": [], "d2": []}))
    # The first queue creates the database; the roster load leaves the names cache.
    ok(fleet_env, "send", "--queue", "d1", "setting up")
    ok(fleet_env, "outbox", "cancel", "1")
    return fleet_env


def test_same_output_either_way(env: dict[str, str]) -> None:
    code, out, _ = _both(env, "send", "--queue", "d1", "plain text")
    assert (code, out) == (0, "d1: queued #X\n")
    code, out, _ = _both(env, "send", "--queue", "--json", "d2", "d1", "d2", "two agents")
    rows = json.loads(out)["messages"]
    assert code == 0 and [r["agent"] for r in rows] == ["d2", "d1"]
    _both(env, "send", "--json", "--queue", "--ttl", "10m", "--max-attempts=3", "d1", "--",
          "-starts with a dash")  # fmt: skip
    _both(env, "send", "--queue", "--all", "to everyone")
    _both(env, "send", "--queue", "--ttl=90", "d1", "-", stdin=b"from stdin\nline two\n")
    _both(env, "send", "--queue", "d1", "non-ASCII: żółw 🐢 \t tab")
    # Each message was stored twice, once by each path, alike.
    stored = [(m["agent"], m["state"], m["first_line"], m["expires_at"] is None)
              for m in box(env)]  # fmt: skip
    assert len(stored) == 2 * 8
    assert all(count == 2 for count in Counter(stored).values()), stored


def test_same_refusals_either_way(env: dict[str, str]) -> None:
    code, _, err = _both(env, "send", "--queue", "d1", "-", stdin=b" \n\t")
    assert (code, err) == (2, "the message is empty\n")
    code, _, err = _both(env, "send", "--queue", "d1", "-", stdin=b"\xff\xfe bad")
    assert code == 2 and err.startswith("the message on stdin is not UTF-8")
    # What the fast path leaves to click (it reads no stdin first), answered alike.
    for argv in (
        ["send", "--queue", "nosuch", "x"],
        ["send", "--queue", "d1", "  "],
        ["send", "--queue", "--ttl", "0", "d1", "x"],
        ["send", "--queue", "--max-attempts", "0", "d1", "x"],
        ["send", "--queue", "--all", "d1", "x"],
        ["send", "--queue", "d1"],
        ["send", "--queue", "--bogus", "d1", "x"],
    ):
        code, _, err = _both(env, *argv, fast=False)
        assert code == 2 and err, argv
    assert len(box(env)) == 0


def test_the_installed_command_queues_without_functools_or_collections(
    env: dict[str, str],
) -> None:
    """What `base.quicksqlite` is for, through the script users run (`python -m` would
    import them itself, through runpy)."""
    script = Path(sys.executable).with_name("mosaic")
    assert script.is_file(), "the package's `mosaic` script is not installed next to python"
    proc = subprocess.run([sys.executable, "-X", "importtime", str(script), "fleet", "send",
                           "--queue", "d1", "hello"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("d1: queued #"), proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    imported = {ln.split("|")[-1].strip() for ln in lines if ln.startswith("import time:")}
    assert {"_sqlite3", "mosaic.cli.quicksend"} <= imported
    assert not imported & {"click", "functools", "collections", "datetime", "typing"}
