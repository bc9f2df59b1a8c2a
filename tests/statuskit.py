"""Running `status --json` by each of its three paths and telling which one answered.

- `served`: the command as a user runs it (`python -m mosaic`); the running watcher answers
  it when it can (`watch/serve.py`), else the command builds the document itself;
- `local`: the same command with the watcher never asked (its client's `ask` replaced);
- `click`: the click command itself (`mosaic.cli.main.main`).

Which path answered is read from `-X importtime`: click's import is the click path; a
command that never imported `mosaic.hosts.status` (the document's builder) was answered by
the watcher. Fields that move between two runs a moment apart are masked; everything else
(key order, spacing, every value) must be equal.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from helpers import wait_until

# Values that move between two runs a moment apart: the uptime, what the watcher says
# about how long the screen has been as it is, how long this machine's part took.
_MOVING = re.compile(
    r'"(uptime_s|last_output_age_s|latency_ms)": [0-9.]+'
    r'|"activity_since": "[^"]*"|"last_tick_age_s": [0-9.]+'
)

Via = Literal["served", "local", "click"]

_CODE = {
    "served": "import sys; from mosaic.cli import main; sys.exit(main())",
    "local": (
        "import sys; import mosaic.watch.statusclient as c; c.ask = lambda *a: None; "
        "from mosaic.cli import main; sys.exit(main())"
    ),
    "click": "import sys; from mosaic.cli.main import main; sys.exit(main(sys.argv[1:]))",
}


# The command with the watcher never asked (its client's `ask` replaced).
NOT_ASKED = _CODE["local"]


@dataclass(frozen=True)
class Run:
    code: int
    out: str  # moving fields masked
    err: str
    imported: frozenset[str]
    raw: str  # stdout as printed
    order: tuple[str, ...]  # the modules, in the order their imports completed

    @property
    def clicked(self) -> bool:
        return "click" in self.imported

    @property
    def served(self) -> bool:
        """Answered by the watcher: the document was never built in this process."""
        return not self.clicked and "mosaic.hosts.status" not in self.imported

    def doc(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed

    def agent(self, name: str) -> dict[str, Any]:
        return next(dict(r) for r in self.doc()["agents"] if r["name"] == name)

    @property
    def same(self) -> tuple[int, str, str]:
        return self.code, self.out, self.err


def run(env: dict[str, str], argv: list[str], via: Via = "served",
        code: str | None = None) -> Run:  # fmt: skip
    """`argv` (starting with `fleet`) by one path; `code` replaces the path's program."""
    cmd = [sys.executable, "-X", "importtime", "-c", code or _CODE[via], *argv]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
    lines = proc.stderr.decode().splitlines()
    imports = [ln for ln in lines if ln.startswith("import time:")]
    order = tuple(ln.split("|")[-1].strip() for ln in imports)
    err = "".join(ln + "\n" for ln in lines if not ln.startswith("import time:"))
    out = _MOVING.sub(lambda m: f'"{m.group(1) or "moving"}": X', proc.stdout.decode())
    return Run(proc.returncode, out, err, frozenset(order), proc.stdout.decode(), order)


def same_every_way(env: dict[str, str], *argv: str, served: bool) -> Run:
    """The command by all three paths, equal byte for byte; `served`: whether the watcher
    must have answered the first (or must not have)."""
    first = run(env, ["fleet", *argv], "served")
    local = run(env, ["fleet", *argv], "local")
    slow = run(env, ["fleet", *argv], "click")
    assert not first.clicked and not local.clicked and slow.clicked
    assert not local.served
    assert first.served is served, f"fleet {' '.join(argv)}: served is {first.served}"
    assert first.same == local.same == slow.same, (first, local, slow)
    return first


def served(env: dict[str, str]) -> bool:
    return run(env, ["fleet", "status", "--json"]).served


@contextlib.contextmanager
def standalone_watcher(env: dict[str, str], tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m mosaic.watch` started by hand, outside either supervisor, serving status
    once the block begins; its log goes to `tmp/watcher.log`."""
    with (tmp / "watcher.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mosaic.watch"], env=env,
                                stdout=log, stderr=log)  # fmt: skip
        try:
            wait_until(lambda: served(env), timeout=30, interval=0.2,
                       what="the standalone watcher serving status")  # fmt: skip
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=15)
