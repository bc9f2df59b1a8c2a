"""The roster validator: every problem at once, each at its exact FILE:LINE:COL."""

# The expected messages are compared whole, so they stay on one line each.
# ruff: noqa: E501

from __future__ import annotations

from pathlib import Path

import pytest

from mosaic.config import load as roster
from mosaic.config import presets, programs
from mosaic.config.roster import (
    PROFILES,
    effective_socket,
    effective_supervisor,
    program_uses,
)
from mosaic.errors import ConfigError, RosterError

F = "/r/roster.yaml"
HEAD = "version: 1\nagents:\n"


def problems(text: str | bytes, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(RosterError) as info:
        roster.loads(text, Path(F), env={"HOME": "/home/u"} if env is None else env)
    return [str(p) for p in info.value.problems]


# (id, roster text, every expected problem line in order)
MALFORMED: list[tuple[str, str, list[str]]] = [
    (
        "empty",
        "",
        [f"{F}:1:1: roster is empty; expected a mapping with 'version: 1' and 'agents:'"],
    ),
    (
        "only-comment",
        "# nothing\n",
        [f"{F}:1:1: roster is empty; expected a mapping with 'version: 1' and 'agents:'"],
    ),
    (
        "list-top",
        "- a\n",
        [f"{F}:1:1: roster must be a mapping (version:, agents:, ...), got a list"],
    ),
    (
        "missing-version",
        "agents: []\n",
        [f"{F}:1:1: missing required key 'version' (add 'version: 1')"],
    ),
    (
        "version-2",
        "version: 2\n",
        [f"{F}:1:10: unsupported roster version 2; only version 1 is understood"],
    ),
    (
        "version-str",
        "version: '1'\n",
        [f"{F}:1:10: version must be the integer 1, got a string '1'"],
    ),
    (
        "unknown-top-key",
        "version: 1\ntransprt: tmux\n",
        [f"{F}:2:1: unknown key 'transprt' (did you mean 'transport'?)"],
    ),
    (
        "bad-transport-supervisor-socket",
        "version: 1\ntransport: ssh\nsupervisor: sytemd\ntmux_socket: a/b\n",
        [
            f"{F}:2:12: invalid transport 'ssh': expected one of tmux",
            f"{F}:3:13: invalid supervisor 'sytemd': expected one of auto, systemd, tmux (did you mean 'systemd'?)",
            f"{F}:4:14: invalid tmux_socket 'a/b': use letters, digits, '_', '.', '-' (at most 64, not starting with '.' or '-')",
        ],
    ),
    (
        "agent-unknown-key-and-runtime",
        HEAD + "  - name: a\n    runtme: codex\n  - name: b\n    runtime: codx\n",
        [
            f"{F}:3:5: agent is missing required key 'runtime' (one of: aider, claude, codex, demo, gemini, opencode, shell)",
            f"{F}:4:5: unknown key 'runtme' (did you mean 'runtime'?)",
            f"{F}:6:14: unknown runtime 'codx' (did you mean 'codex'?)",
        ],
    ),
    (
        "duplicate-name-points-at-second",
        HEAD + "  - name: a\n    runtime: demo\n  - name: a\n    runtime: demo\n",
        [f"{F}:5:11: duplicate agent name 'a' (first defined at line 3)"],
    ),
    *[
        (
            f"bad-name-{label}",
            HEAD + f"  - name: {quoted}\n    runtime: demo\n",
            [
                f"{F}:3:11: invalid agent name {shown}: must match ^[a-z][a-z0-9_-]{{0,31}}$ "
                "(a lowercase letter, then lowercase letters, digits, '_' or '-'; at most 32) "
                "because it becomes a tmux session, systemd instance and file name"
            ],
        )
        for label, quoted, shown in [
            ("dot", "a.b", "'a.b'"),
            ("colon", "'a:b'", "'a:b'"),
            ("slash", "a/b", "'a/b'"),
            ("space", "'a b'", "'a b'"),
            ("dollar", "'a$(x)'", "'a$(x)'"),
            ("upper", "Coder", "'Coder'"),
            ("digit-first", "'0a'", "'0a'"),
            ("too-long", "a" * 33, repr("a" * 33)),
            ("newline", '"a\\n"', "'a\\n'"),
        ]
    ],
    (
        "name-int",
        HEAD + "  - name: 12\n    runtime: demo\n",
        [f"{F}:3:11: agent name must be a string, got an integer"],
    ),
    (
        "restart-no",
        HEAD + "  - name: a\n    runtime: demo\n    restart: no\n",
        [
            f"{F}:5:14: invalid restart policy 'no': expected always, on-failure or never (did you mean 'never'?)"
        ],
    ),
    (
        "restart-bool",
        HEAD + "  - name: a\n    runtime: demo\n    restart: false\n",
        [
            f"{F}:5:14: invalid restart policy false (a boolean): expected always, on-failure or never (did you mean 'never'?)"
        ],
    ),
    (
        "args-and-env-types",
        HEAD
        + "  - name: a\n    runtime: demo\n    args: [x, 1.5, true]\n    env: {1X: a, OK: null, N: 0x1f}\n",
        [
            f"{F}:5:15: args item must be a string, got a number (quote it)",
            f"{F}:5:20: args item must be a string, got a boolean (quote it)",
            f"{F}:6:11: invalid environment variable name '1X': must match [A-Za-z_][A-Za-z0-9_]*",
            f"{F}:6:22: env value for OK must be a string, got null (quote it)",
            f"{F}:6:31: env value for N must be a string, got an integer (quote it)",
        ],
    ),
    (
        "args-not-list",
        HEAD + "  - name: a\n    runtime: demo\n    args: --x\n",
        [f"{F}:5:11: args must be a list of strings, e.g. ['--flag', 'value']; got a string"],
    ),
    (
        "defaults",
        "version: 1\ndefaults:\n  workdir: $NOPE/x\n  args: [a]\n",
        [
            f"{F}:3:12: workdir '$NOPE/x' uses unset variable(s): NOPE",
            f"{F}:4:3: unknown key 'args' (expected one of: workdir, env, restart, stuck_after)",
        ],
    ),
    (
        "runtimes",
        "version: 1\nruntimes:\n  codex: {command: [x]}\n  Bad.N: {command: [x]}\n"
        "  r1: {command: []}\n  r2: {command: python3 -q}\n  r3: {processes: [x]}\n"
        "  r4:\n    command: [x]\n    ready: '^>>> ($'\n    busy: \"a\\\\((\"\n    bogus: 1\n",
        [
            f"{F}:3:3: runtime 'codex' is built in; give the custom runtime another name",
            f"{F}:4:3: invalid runtime name 'Bad.N': must match ^[a-z][a-z0-9_-]{{0,31}}$",
            f"{F}:5:17: command must not be empty",
            f"{F}:6:17: command must be a list of strings, e.g. ['python3', '-q']; got a string",
            f"{F}:7:3: runtime 'r3' is missing required key 'command'",
            f"{F}:10:18: invalid ready regex: missing ), unterminated subpattern",
            f"{F}:11:16: invalid busy regex: missing ), unterminated subpattern",
            f"{F}:12:5: unknown key 'bogus' (did you mean 'busy'?)",
        ],
    ),
    (
        "duplicate-yaml-keys-and-more",
        "version: 1\nversion: 1\nagents:\n  - name: a\n    runtime: demo\n    runtime: codx\n    restrt: x\n",
        [
            f"{F}:2:1: duplicate key 'version' (first at line 1)",
            f"{F}:6:5: duplicate key 'runtime' (first at line 5)",
            f"{F}:7:5: unknown key 'restrt' (did you mean 'restart'?)",
        ],
    ),
    (
        "tagged",
        "version: !!python/object:os.system 1\n",
        [
            f"{F}:1:10: version must be the integer 1, got a tagged value !!python/object:os.system '1'"
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in MALFORMED], ids=[i for i, _, _ in MALFORMED]
)
def test_malformed_rosters_report_every_problem_at_its_position(
    text: str, expected: list[str]
) -> None:
    assert problems(text) == expected


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("version: 1\nagents: [\n", "3:1"),  # unclosed flow list: found at the end
        ("version: 1\n---\nversion: 1\n", "2:1"),  # a second document
        ("version: 1\nagents:\n  - name: a\n   runtime: demo\n", "4:4"),
    ],
    ids=["unclosed-flow", "multi-doc", "bad-indent"],
)
def test_yaml_syntax_errors_are_one_positioned_problem(text: str, where: str) -> None:
    """Our prefix and position; the explanation after it is the YAML parser's own words,
    which the tests do not pin."""
    [line] = problems(text)
    assert line.startswith(f"{F}:{where}: YAML syntax error: "), line
    assert "\n" not in line


def test_all_problems_of_one_file_come_together_sorted_by_position() -> None:
    text = (
        "version: 3\nagents:\n  - name: A\n    runtime: codx\n"
        "  - name: b\n    runtime: demo\n    restart: off\n"
    )
    got = problems(text)
    assert [p.split(":")[1] for p in got] == ["1", "3", "4", "7"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"version: 1\nagents: []\n# caf\xe9\n", f"{F}:3:6: not UTF-8 text (byte 0xe9)"),
        (b"\xff\xfe\x00\x01garbage", f"{F}:1:1: not UTF-8 text (byte 0xff)"),
        # The parser's reason follows our prefix and is not pinned.
        (b"version: 1\n\x00\x01\x02", f"{F}:2:1: not a YAML text file: "),
        (bytes(range(1, 32)) * 3, f"{F}:1:1: not a YAML text file: "),
    ],
)
def test_garbage_bytes_are_a_positioned_problem(data: bytes, expected: str) -> None:
    [line] = problems(data)
    assert line.startswith(expected)


def test_a_valid_roster_builds_agents_with_defaults_merged() -> None:
    text = """\
version: 1
supervisor: tmux
tmux_socket: fleet.1
defaults:
  workdir: ~/src/app
  env: {EDITOR: vi, LEVEL: low}
  restart: always
agents:
  - name: coder0
    runtime: pyrepl
    args: ["--model", 4]
    env: {LEVEL: high, PORT: 8080}
  - name: w-2
    runtime: demo
    workdir: rel/dir
    restart: never
runtimes:
  pyrepl:
    command: ["/usr/bin/python3", "-q", "-i"]
    ready: '^>>> $'
    queued: 'Queued'
"""
    r = roster.loads(text, Path(F), env={"HOME": "/home/u"})
    assert (r.supervisor, r.tmux_socket, r.transport, r.version) == ("tmux", "fleet.1", "tmux", 1)
    a, b = r.agents
    assert a.workdir == Path("/home/u/src/app")
    assert a.args == ("--model", "4")
    assert a.env_dict == {"EDITOR": "vi", "LEVEL": "high", "PORT": "8080"}
    assert a.restart == "always"
    assert b.workdir == Path("/r/rel/dir")
    assert b.restart == "never"
    rt = r.runtime_for(a)
    assert rt.command == ("/usr/bin/python3", "-q", "-i")
    assert rt.processes == ("python3",)
    assert (rt.ready, rt.queued, rt.builtin) == ("^>>> $", "Queued", False)
    assert r.runtimes["codex"].builtin


def test_no_agents_is_an_empty_fleet() -> None:
    assert roster.loads("version: 1\nagents:\n", Path(F)).agents == ()


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_validates(name: str) -> None:
    r = roster.loads(presets.render(name), Path(F))
    assert r.agents
    if name == "demo":
        assert {a.runtime for a in r.agents} == {"demo"}


def test_env_overrides_for_socket_and_supervisor() -> None:
    r = roster.loads("version: 1\ntmux_socket: s1\nsupervisor: systemd\n", Path(F))
    assert effective_socket(r, {}) == "s1"
    assert effective_socket(r, {"MOSAIC_TMUX_SOCKET": "t2"}) == "t2"
    assert effective_supervisor(r, {}) == "systemd"
    assert effective_supervisor(r, {"MOSAIC_FLEET_SUPERVISOR": "tmux"}) == "tmux"
    with pytest.raises(ConfigError, match=r"\$MOSAIC_FLEET_SUPERVISOR='sysd'"):
        effective_supervisor(r, {"MOSAIC_FLEET_SUPERVISOR": "sysd"})
    with pytest.raises(ConfigError, match=r"\$MOSAIC_TMUX_SOCKET='../x'"):
        effective_socket(r, {"MOSAIC_TMUX_SOCKET": "../x"})


def test_missing_programs_use_the_agents_own_path(tmp_path: Path) -> None:
    tool = tmp_path / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    text = (
        "version: 1\nagents:\n"
        "  - {name: a, runtime: t}\n"
        f"  - {{name: b, runtime: t, env: {{PATH: '{tmp_path}'}}}}\n"
        "  - {name: c, runtime: t}\n"
        "runtimes:\n  t: {command: [mytool]}\n"
    )
    r = roster.loads(text, Path(F), env={"PATH": "/nonexistent"})
    [missing] = programs.missing(program_uses(r), {"PATH": "/nonexistent"})
    assert missing == ("mytool", "t", ("a", "c"))
    assert programs.describe(missing) == (
        "program 'mytool' (runtime t) not found on PATH; used by a, c"
    )


def test_load_of_missing_file_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="create one with `mosaic fleet init`"):
        roster.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize("profile", PROFILES)
def test_custom_runtime_may_pick_any_screen_profile(profile: str) -> None:
    text = (
        "version: 1\nagents:\n  - name: a\n    runtime: mine\n"
        f"runtimes:\n  mine:\n    command: [mine]\n    profile: {profile}\n"
    )
    loaded = roster.loads(text, Path(F), env={})
    assert loaded.runtimes["mine"].profile == profile
    assert problems(text.replace(f"profile: {profile}", "profile: gemeni")) == [
        f"{F}:8:14: invalid profile 'gemeni': expected one of {', '.join(PROFILES)} "
        "(did you mean 'gemini'?)"
    ]
