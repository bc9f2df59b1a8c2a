"""Shell completion of agent, runtime and preset names, through click's completion protocol
(`_MOSAIC_COMPLETE`, COMP_WORDS, COMP_CWORD) as bash, zsh and fish call it: real `mosaic`
subprocesses, a real bash running the script click generates, and, for every command, the
answer of the click-free fast path (`cli.quickcomplete`) compared with click's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetkit import write_roster
from mosaic.cli import quickcomplete
from mosaic.cli.main import FLEET_COMMANDS
from mosaic.config.load import load
from mosaic.config.paths import Paths

ROSTER = """\
version: 1
agents:
  - name: alpha
    runtime: shell
  - name: alps
    runtime: demo
  - name: beta
    runtime: pyrepl
runtimes:
  pyrepl:
    command: ["python3", "-q", "-i"]
    processes: ["python3"]
"""


def complete(
    env: dict[str, str], shell: str, line: str, *python_flags: str
) -> subprocess.CompletedProcess[str]:
    """What `mosaic` prints when `shell` asks to complete the end of `line`."""
    words = line.split()
    if shell == "fish":  # the line up to the cursor, and the token under it
        cword = "" if line.endswith(" ") else words[-1]
    else:
        cword = str(len(words) if line.endswith(" ") else len(words) - 1)
    run_env = dict(env, _MOSAIC_COMPLETE=f"{shell}_complete", COMP_WORDS=line, COMP_CWORD=cword)
    argv = [sys.executable, *python_flags, "-m", "mosaic"]
    return subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=30)


def values(out: str) -> list[str]:
    return [line.split(",", 1)[1].split("\t")[0] for line in out.splitlines() if line]


@pytest.fixture
def env(fleet_env: dict[str, str]) -> dict[str, str]:
    write_roster(fleet_env, ROSTER)
    return fleet_env


def test_agent_names_complete_in_bash_zsh_and_fish(env: dict[str, str]) -> None:
    bash = complete(env, "bash", "mosaic fleet start ")
    assert (bash.returncode, bash.stderr) == (0, "")
    assert bash.stdout == "plain,alpha\nplain,alps\nplain,beta\n"
    assert values(complete(env, "bash", "mosaic fleet logs al").stdout) == ["alpha", "alps"]
    # zsh: type, value, help (the agent's runtime) on three lines each.
    zsh = complete(env, "zsh", "mosaic fleet attach b").stdout
    assert zsh == "plain\nbeta\npyrepl\n"
    # fish: the whole line and the token under the cursor; help after a tab.
    fish = complete(env, "fish", "mosaic fleet send alpha al").stdout
    assert fish == "plain,alpha\tshell\nplain,alps\tdemo\n"
    assert complete(env, "bash", "mosaic fleet stop zz").stdout == "\n"


def test_runtime_and_preset_names(env: dict[str, str]) -> None:
    runtimes = values(complete(env, "bash", "mosaic fleet add new --runtime ").stdout)
    assert {"codex", "claude", "shell", "demo", "pyrepl"} <= set(runtimes)
    assert values(complete(env, "bash", "mosaic fleet add new --runtime py").stdout) == [
        "pyrepl"
    ]
    fresh = dict(env, MOSAIC_HOME=env["MOSAIC_HOME"] + "-none")  # no roster at all yet
    presets = complete(fresh, "zsh", "mosaic fleet init --preset ").stdout.split("\n")
    assert presets[:3] == ["plain", "solo", "one Codex CLI agent"]
    assert values(complete(fresh, "bash", "mosaic fleet add x --runtime co").stdout) == [
        "codex"
    ]


def test_the_roster_flag_and_an_edited_roster_are_followed(
    env: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("version: 1\nagents:\n  - name: gamma\n    runtime: shell\n")
    line = f"mosaic fleet --roster {other} status "
    assert values(complete(env, "bash", line).stdout) == ["gamma"]
    assert values(complete(env, "bash", f"mosaic fleet --roster={other} watch ").stdout) == [
        "gamma"
    ]
    assert values(complete(env, "bash", "mosaic fleet start ").stdout) == [
        "alpha", "alps", "beta",
    ]  # fmt: skip
    write_roster(env, ROSTER.replace("name: beta", "name: delta"))
    assert values(complete(env, "bash", "mosaic fleet start ").stdout) == [
        "alpha", "alps", "delta",
    ]  # fmt: skip


def test_a_tab_for_names_imports_neither_click_nor_the_yaml_parser(env: dict[str, str]) -> None:
    complete(env, "bash", "mosaic fleet start ")  # a first TAB (or any command) loads it
    proc = complete(env, "bash", "mosaic fleet start al", "-X", "importtime")
    assert values(proc.stdout) == ["alpha", "alps"]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "mosaic.cli.quickcomplete" in imported
    heavy = {m for m in imported if m.split(".")[0] in ("click", "ruamel", "rich")}
    assert not heavy and "mosaic.config.checker" not in imported, sorted(heavy)


def test_a_broken_roster_completes_nothing_quietly(env: dict[str, str]) -> None:
    write_roster(env, "version: 1\nagents:\n  - name: alpha\n    runtim: shell\n")
    proc = complete(env, "bash", "mosaic fleet start ")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "\n", "")


def test_bash_runs_the_script_click_generates(env: dict[str, str]) -> None:
    mosaic = Path(sys.executable).parent / "mosaic"
    generate = dict(env, _MOSAIC_COMPLETE="bash_source")
    source = subprocess.run([str(mosaic)], env=generate, capture_output=True, text=True,
                            timeout=30, check=True).stdout  # fmt: skip
    script = source + (
        'COMP_WORDS=(mosaic fleet restart al); COMP_CWORD=3\n'
        '_mosaic_completion mosaic\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    path = dict(env, PATH=f"{mosaic.parent}{os.pathsep}{env['PATH']}")
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=path,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert (out.returncode, out.stdout, out.stderr) == (0, "alpha\nalps\n", "")


# --- the fast path gives click's answer, for every command --------------------------------

SHELLS = ("bash", "zsh", "fish")


def _lines() -> list[str]:
    lines = []
    for command in FLEET_COMMANDS:
        base = f"mosaic fleet {command} "
        lines += [base, base + "al", base + "alpha ", base + "alpha b", base + "--"]
    lines += [
        "mosaic fleet add x --runtime ", "mosaic fleet add x --runtime py",
        "mosaic fleet add x --workdir /tmp --runtime s", "mosaic fleet init --preset ",
        "mosaic fleet --roster ROSTER start ", "mosaic fleet --roster=ROSTER logs a",
        "mosaic fleet --mosaic-home HOME --roster ROSTER send alpha ",
        "mosaic fleet send --all ", "mosaic fleet capture -n 5 ", "mosaic fleet start -- ",
        "mosaic fleet logs --roster=x ", "mosaic fleet ", "mosaic ", "mosaic fleet --roster ",
    ]  # fmt: skip
    return lines


def _environ(shell: str, line: str) -> dict[str, str]:
    words = line.split()
    if shell == "fish":
        cword = "" if line.endswith(" ") else words[-1]
    else:
        cword = str(len(words) if line.endswith(" ") else len(words) - 1)
    return {"_MOSAIC_COMPLETE": f"{shell}_complete", "COMP_WORDS": line, "COMP_CWORD": cword}


def test_the_fast_path_answers_exactly_as_click_does(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.shell_completion import get_completion_class

    from mosaic.cli.main import cli

    home = Path(env["MOSAIC_HOME"])
    roster = home / "fleet" / "roster.yaml"
    load(roster, cache_dir=Paths(home, roster).run)  # what any earlier command leaves
    for key in [k for k in os.environ if k.startswith("MOSAIC_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MOSAIC_HOME", str(home))
    answered = set()
    for shell in SHELLS:
        for raw in _lines():
            line = raw.replace("ROSTER", str(roster)).replace("HOME", str(home))
            environ = _environ(shell, line)
            fast = quickcomplete.answer({**os.environ, **environ})
            for key, value in environ.items():
                monkeypatch.setenv(key, value)
            comp = get_completion_class(shell)
            assert comp is not None
            slow = comp(cli, {}, "mosaic", "_MOSAIC_COMPLETE").complete() + "\n"
            if fast is not None:
                assert fast == slow, (shell, line)
                answered.add(raw)
    # It answers the questions it is for (and leaves option names and the rest to click).
    expected = {
        f"mosaic fleet {c} {w}" for c in quickcomplete.POSITIONALS for w in ("", "al")
    } | {
        "mosaic fleet send alpha ", "mosaic fleet send alpha b",
        "mosaic fleet add x --runtime ", "mosaic fleet add x --runtime py",
        "mosaic fleet add x --workdir /tmp --runtime s",
        "mosaic fleet --roster ROSTER start ", "mosaic fleet --roster=ROSTER logs a",
        "mosaic fleet --mosaic-home HOME --roster ROSTER send alpha ",
    }  # fmt: skip
    assert answered == expected
