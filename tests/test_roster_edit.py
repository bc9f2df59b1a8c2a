"""Roster edits: round trips keep data and comments, edits are serialized and atomic."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import run_mosaic
from mosaic.config import load as rosterlib
from mosaic.config import paths as pathslib
from mosaic.config import presets, rosteredit, yamlio
from mosaic.config.roster import Agent
from mosaic.errors import ConfigError, UnknownAgentError, UsageError

NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
COMMENT = st.from_regex(r"[A-Za-z0-9 ]{1,12}", fullmatch=True).map(str.strip).filter(bool)


def _paths(tmp_path: Path) -> pathslib.Paths:
    return pathslib.resolve(home=str(tmp_path / "home"), env={})


def _render(names: list[str], comments: list[str], block_offset: int) -> str:
    """A hand-written-looking roster: a header, a comment above every agent, an end-of-line
    comment on each name, a comment after the list, in either common list style."""
    dash = " " * block_offset
    body = "".join(
        f"{dash}# about {n}: {c}\n{dash}- name: {n}  # eol {c}\n{dash}  runtime: demo\n"
        f"{dash}  env: {{K: '{c}'}}\n"
        for n, c in zip(names, comments, strict=True)
    )
    return f"# header\nversion: 1  # v\nagents:\n{body}# after agents\ntmux_socket: s\n"


@pytest.mark.parametrize("name", presets.names())
@pytest.mark.parametrize("offset", [0, 2])
def test_an_unedited_roster_round_trips_byte_identically(name: str, offset: int) -> None:
    text = presets.render(name) if offset == 2 else _render(["a", "b"], ["x", "y"], 0)
    assert yamlio.dump(yamlio.load(text), yamlio.guess_style(text)) == text


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    names=st.lists(NAMES, min_size=1, max_size=5, unique=True),
    offset=st.sampled_from([0, 2]),
)
def test_edit_round_trip_keeps_other_agents_and_comments(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, names: list[str], offset: int
) -> None:
    comments = data.draw(st.lists(COMMENT, min_size=len(names), max_size=len(names)))
    paths = _paths(tmp_path_factory.mktemp("rt"))
    text = _render(names, comments, offset)
    paths.roster.parent.mkdir(parents=True)
    paths.roster.write_text(text)
    before = rosterlib.load(paths.roster)

    victim = data.draw(st.sampled_from(names))
    newcomer = data.draw(NAMES.filter(lambda n: n not in names))
    rosteredit.remove(paths, victim)
    rosteredit.add(paths, newcomer, "demo", args=["--think", "1"], env={"K": "v"})

    after = rosterlib.load(paths.roster)
    kept = [a for a in before.agents if a.name != victim]
    assert list(after.agents[:-1]) == kept
    assert after.agents[-1] == Agent(
        newcomer, "demo", None, ("--think", "1"), (("K", "v"),)
    )
    written = paths.roster.read_text()
    for line in ("# header", "version: 1  # v", "# after agents", "tmux_socket: s"):
        assert line in written
    for n, c in zip(names, comments, strict=True):
        if n != victim:
            assert f"# about {n}: {c}\n" in written
            assert f"- name: {n}  # eol {c}\n" in written
    # Comments stay above the agent they describe, and the trailing one after the list.
    assert written.index("# after agents") > written.index(f"name: {newcomer}")
    # Removing the newcomer again gives back exactly the file without the victim.
    rosteredit.remove(paths, newcomer)
    assert rosterlib.load(paths.roster).agents == tuple(kept)


def test_removing_every_agent_keeps_a_valid_file_and_comments(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.roster.parent.mkdir(parents=True)
    paths.roster.write_text(_render(["a", "b"], ["x", "y"], 2))
    rosteredit.remove(paths, "b")
    rosteredit.remove(paths, "a")
    text = paths.roster.read_text()
    assert rosterlib.load(paths.roster).agents == ()
    assert "# after agents" in text
    rosteredit.add(paths, "c", "demo")
    assert rosterlib.load(paths.roster).names == ["c"]


def test_init_refuses_to_overwrite_without_force_and_sets_modes(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    rosteredit.init(paths, "demo")
    assert stat.S_IMODE(paths.roster.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.roster.parent.stat().st_mode) == 0o700
    paths.roster.write_text("# mine\n" + presets.render("demo"))
    with pytest.raises(UsageError, match=r"already exists.*--force"):
        rosteredit.init(paths, "solo")
    assert paths.roster.read_text().startswith("# mine\n")
    rosteredit.init(paths, "solo", force=True)
    assert rosterlib.load(paths.roster).names == ["coder0"]
    assert stat.S_IMODE(paths.roster.stat().st_mode) == 0o600


def test_bad_edits_write_nothing(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    rosteredit.init(paths, "demo")
    original = paths.roster.read_bytes()
    with pytest.raises(UsageError, match="already exists"):
        rosteredit.add(paths, "demo0", "demo")
    with pytest.raises(UsageError, match=r"unknown runtime 'codx' \(did you mean 'codex'\?\)"):
        rosteredit.add(paths, "x", "codx")
    with pytest.raises(UsageError, match="invalid agent name 'a:b'"):
        rosteredit.add(paths, "a:b", "demo")
    with pytest.raises(UsageError, match="invalid environment variable name 'A-B'"):
        rosteredit.add(paths, "x", "demo", env={"A-B": "1"})
    with pytest.raises(ConfigError, match="workdir 'x/\\$NOPE_VAR' uses unset"):
        rosteredit.add(paths, "x", "demo", workdir="x/$NOPE_VAR")
    with pytest.raises(UnknownAgentError) as info:
        rosteredit.remove(paths, "ghost")
    assert info.value.known == ["demo0", "demo1", "demo2"]
    assert paths.roster.read_bytes() == original


def test_edits_of_a_missing_roster_suggest_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mosaic fleet init"):
        rosteredit.add(_paths(tmp_path), "a", "demo")


def test_twelve_concurrent_adds_all_land(fleet_env: dict[str, str]) -> None:
    assert run_mosaic(["fleet", "init", "--preset", "demo"], fleet_env).code == 0
    names = [f"par{i}" for i in range(12)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mosaic", "fleet", "add", n, "--runtime", "demo"],
            env=fleet_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in names
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    roster_path = Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "roster.yaml"
    loaded = rosterlib.load(roster_path)
    assert sorted(loaded.names) == sorted(["demo0", "demo1", "demo2", *names])


_CHILD = """
import sys
from mosaic.config import paths
from mosaic.config import load as roster
from mosaic.config import rosteredit
p = paths.resolve(home=sys.argv[1], env={})
i = 0
while True:
    if "flip" in roster.load(p.roster).names:
        rosteredit.remove(p, "flip")
    else:
        rosteredit.add(p, "flip", "demo", args=["--think", "1"])
    i += 1
    print(i, flush=True)
"""


def test_sigkill_during_edits_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    rosteredit.init(paths, "demo")
    without = paths.roster.read_bytes()
    rosteredit.add(paths, "flip", "demo", args=["--think", "1"])
    with_flip = paths.roster.read_bytes()
    rosteredit.remove(paths, "flip")
    assert paths.roster.read_bytes() == without
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    seen = set()
    for _ in range(25):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(paths.home)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        # Let it get into its edit loop, then kill it at a random moment.
        first = child.stdout.readline().strip()
        assert first == "1", f"child did not complete an edit (exit {child.poll()})"
        _busy_wait(rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
        current = paths.roster.read_bytes()
        assert current in (without, with_flip)
        seen.add(current)
        rosterlib.load(paths.roster)
    # Both states were observed, so the kills really landed in the middle of the loop.
    assert seen == {without, with_flip}


def _busy_wait(seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


_KILLED_MID_WRITE = """
import os, signal, sys
from mosaic.base import fs as fsutil
from mosaic.config import paths
from mosaic.config import rosteredit
p = paths.resolve(home=sys.argv[1], env={})
# Die by a real SIGKILL at the worst moment: temp file written, not yet renamed.
fsutil.os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
rosteredit.add(p, "ghost", "demo")
"""


def test_the_next_edit_clears_temp_files_of_a_writer_killed_mid_write(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    rosteredit.init(paths, "demo")
    before = paths.roster.read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(paths.home)], env=env, timeout=60
    )
    assert child.returncode == -signal.SIGKILL
    temps = list(paths.roster.parent.glob(".roster.yaml.*.tmp"))
    assert len(temps) == 1, temps  # what the killed writer left
    assert paths.roster.read_bytes() == before

    rosteredit.add(paths, "next", "demo")

    assert [p.name for p in paths.roster.parent.glob(".roster.yaml.*.tmp")] == []
    assert "next" in rosterlib.load(paths.roster).names
