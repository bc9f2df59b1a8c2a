"""A malformed roster never crashes: whatever the bytes, loading ends in a Roster or in a
RosterError whose every line is `FILE:LINE:COL: message`, and `mosaic fleet validate` exits
0 or 2 without a traceback.

Inputs are valid rosters (the presets and a few written like a user's) mutated the way
hands and tools break files: lines deleted, duplicated or swapped, YAML punctuation, tags,
anchors, aliases and merge keys dropped in anywhere, tabs, NULs, odd line breaks, non-UTF-8
bytes, deep nesting, very long lines. Every class of crash this found has a row in
REGRESSIONS with the exact message it now gives. MOSAIC_FUZZ_EXAMPLES=N runs a longer soak.
"""

# The expected messages are compared whole, so they stay on one line each.
# ruff: noqa: E501

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic.config import load, presets
from mosaic.config.roster import Roster
from mosaic.errors import ConfigError

F = "/r/roster.yaml"
ENV = {"HOME": "/home/u", "PROJECT": "/srv/p"}
EXAMPLES = int(os.environ.get("MOSAIC_FUZZ_EXAMPLES", "700"))
CLI_EXAMPLES = max(12, EXAMPLES // 50)

FULL = """\
# every field the roster knows
version: 1
transport: tmux
supervisor: tmux
tmux_socket: mosaic
defaults:
  workdir: ~/src/app
  env: {EDITOR: vi}
  restart: always
agents:
  - name: coder0
    runtime: pyrepl
    workdir: $PROJECT/x
    args: ["--model", "o4"]
    env: {KEY: value}
    restart: on-failure
  - {name: helper, runtime: demo, args: [--think, '1'], restart: never}
runtimes:
  pyrepl:
    command: ["python3", "-q", "-i"]
    processes: ["python3"]
    ready: '^>>> $'
    busy: 'Working'
    approval: 'Allow\\?'
    paste_window_ms: 100
    submit_key: Enter
    quit_keys: [C-d]
"""

ANCHORED = """\
version: 1
defaults: &base
  env: &env {EDITOR: vi, PAGER: less}
agents:
  - &first
    name: a
    runtime: demo
    env: *env
  - <<: *first
    name: b
  - name: c
    runtime: shell
    args:
      - -c
      - |
        echo "multi
        line"
"""

SEEDS = [*(p.text for p in presets.PRESETS.values()), FULL, ANCHORED]

PIECES = [
    *"?:-[]{}&*!|>%@`,#'\"\t\0\\ ",
    "? ", ": ", "- ", "&a ", "*a", "*first", "<<: *a", "<<: [*env, *first]", "<<: 1",
    "!!map ", "!!seq ", "!!set ", "!!omap ", "!!pairs ", "!!binary ", "!!int ", "!!float ",
    "!!bool ", "!!null ", "!!str ", "!!timestamp ", "!!merge ", "!custom ", "! ",
    "!<tag:yaml.org,2002:int> ", "!!python/object/apply:os.system ", "!e!x ",
    '"\\ud800"', '"\\x00"', '"\\e\\a"', "'it''s'", "%YAML 1.1\n---\n", "%YAML 2.0\n---\n",
    "%TAG !e! tag:e,2000:\n---\n", "---\n", "...\n", "\ufeff", "\u2028", "\x85", "\r", "\r\n",
    "~", "null", ".nan", "-.inf", "0x1F", "0o17", "0b101", "1_000", "1e400", "2001-12-14",
    "2001-13-45", "12:30:45", "yes", "no", "on", "?  env: {EDITOR: vi}", "{a: 1}", "[a, b]",
    "[{a: 1}]", "{[a]: 1}", "? [a]\n: 1\n", "$UNSET", "~nobody/x", "((((", "a{99999999999}",
    "9" * 5000, "0x" + "f" * 5000,
]  # fmt: skip


def _nesting(kind: int, depth: int) -> str:
    if kind == 0:
        return "x: " + "[" * depth + "]" * depth
    if kind == 1:
        return "x: " + "{a: " * depth + "1" + "}" * depth
    if kind == 2:
        return "\n".join(" " * i + "a:" for i in range(depth))
    return "x:\n  " + "- " * depth + "1"


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed roster after one to six random edits."""
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.integers(0, 9))
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op in (3, 4, 5):
            col = draw(st.integers(0, len(lines[i])))
            piece = draw(st.sampled_from(PIECES))
            lines[i] = lines[i][:col] + piece + lines[i][col:]
        elif op == 6:
            col = draw(st.integers(0, len(lines[i])))
            piece = draw(st.text(max_size=8))
            lines[i] = lines[i][:col] + piece + lines[i][col:]
        elif op == 7:
            indent = draw(st.integers(0, 8))
            lines[i] = " " * indent + lines[i].lstrip(" ")
        elif op == 8:
            kind, depth = draw(st.integers(0, 3)), draw(st.integers(1, 100))
            lines.insert(i, _nesting(kind, depth))
        else:
            lines[i] += draw(st.sampled_from("ax9 [")) * draw(st.integers(100, 20_000))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + bytes([draw(st.integers(0x80, 0xFF))]) + data[at:]
    return data


LINE = re.compile(rf"{re.escape(F)}:(\d+):(\d+): (\S.*)")


def _outcome(data: bytes, cache_dir: Path | None = None) -> Roster | ConfigError:
    """What loading gives (through the parsed-document cache when given one); anything but
    a Roster or a ConfigError fails the test."""
    try:
        if cache_dir is None:
            return load.loads(data, Path(F), env=ENV)
        return load.load_bytes(data, Path(F), env=ENV, cache_dir=cache_dir)
    except ConfigError as exc:
        return exc


def _assert_well_formed(data: bytes, outcome: Roster | ConfigError) -> None:
    if isinstance(outcome, Roster):
        return
    lines = outcome.message.split("\n")
    assert lines and lines != [""], "an error without a message"
    count = len(data.decode("utf-8", "replace").splitlines()) + 1
    for line in lines:
        match = LINE.fullmatch(line)
        assert match, f"not FILE:LINE:COL: message: {line!r}"
        assert 1 <= int(match.group(1)) <= count, f"line outside the file: {line!r}"
        assert int(match.group(2)) >= 1
        assert line.isprintable(), f"unprintable message: {line!r}"
        assert len(line) < 500, f"message too long to read: {line[:200]!r}"


@pytest.fixture(scope="module")
def cache_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mosaic-fuzz-") as tmp:
        run = Path(tmp, "run")
        run.mkdir(mode=0o700)
        yield run


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=mutated())
def test_loading_any_mutation_ends_in_a_roster_or_positioned_problems(
    data: bytes, cache_dir: Path
) -> None:
    outcome = _outcome(data, cache_dir)  # parsed: these bytes are new to the cache
    _assert_well_formed(data, outcome)
    # Run again, a valid roster is answered from the cache: it must say the same.
    again = _outcome(data, cache_dir)
    if isinstance(outcome, Roster):
        assert again == outcome
    else:
        assert isinstance(again, ConfigError) and again.message == outcome.message


# (id, roster text or bytes, every expected problem line): one row per class of crash the
# fuzzing found, each of which used to end in a Python exception from inside the loader.
REGRESSIONS: list[tuple[str, str | bytes, list[str]]] = [
    (
        "mapping-as-key",  # ruamel: TypeError: unhashable type: 'CommentedMap'
        "version: 1\ndefaults:\n  ?  env: {EDITOR: vi}\n",
        [f"{F}:3:6: YAML syntax error: a mapping key must be a plain name, not a mapping"],
    ),
    (
        "list-as-key",  # was a tuple key: "unknown key ('a',)"
        "version: 1\n? [a]\n: 1\n",
        [f"{F}:2:3: YAML syntax error: a mapping key must be a plain name, not a list"],
    ),
    (
        "tagged-list-as-key",  # ruamel: TypeError: unhashable type: 'CommentedMap'
        "version: 1\n!!str [{a: 1}]: 1\n",
        [f"{F}:2:1: YAML syntax error: a mapping key must be a plain name, not a list"],
    ),
    (
        "deep-flow-list",  # RecursionError, after seconds of scanning
        "version: 1\nx: " + "[" * 1000 + "]" * 1000 + "\n",
        [f"{F}:2:67: YAML syntax error: nested deeper than 64 levels"],
    ),
    (
        "deep-flow-mapping",  # RecursionError
        "version: 1\nx: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n",
        [f"{F}:2:253: YAML syntax error: nested deeper than 64 levels"],
    ),
    (
        "deep-block-mapping",  # RecursionError
        "version: 1\n" + "".join(" " * i + "a:\n" for i in range(400)),
        [f"{F}:65:64: YAML syntax error: nested deeper than 64 levels"],
    ),
    (
        "deep-compact-list",  # RecursionError
        "version: 1\nx:\n  " + "- " * 400 + "1\n",
        [f"{F}:3:129: YAML syntax error: nested deeper than 64 levels"],
    ),
    (
        "int-past-digit-limit",  # ValueError: Exceeds the limit (4300 digits)
        "version: " + "1" * 5000 + "\n",
        [
            f"{F}:1:10: YAML syntax error: cannot read '1111111111111111111111111111111111111111…' as !!int (too many digits)"
        ],
    ),
    (
        "hex-int-past-digit-limit",  # ValueError from the checker's repr of the value
        "version: 0x" + "f" * 5000 + "\n",
        [f"{F}:1:10: version must be the integer 1, got an integer"],
    ),
    (
        "int-tag-on-text",  # ValueError: invalid literal for int()
        "version: !!int abc\n",
        [f"{F}:1:10: YAML syntax error: cannot read 'abc' as !!int"],
    ),
    (
        "int-tag-on-empty",  # IndexError: string index out of range
        "version: !!int\n",
        [f"{F}:1:10: YAML syntax error: cannot read '' as !!int"],
    ),
    (
        "float-tag-on-text",  # ValueError: could not convert string to float
        "version: !!float x\n",
        [f"{F}:1:10: YAML syntax error: cannot read 'x' as !!float"],
    ),
    (
        "bool-tag-on-text",  # KeyError
        "version: 1\nagents:\n  - {name: a, runtime: demo, args: [!!bool maybe]}\n",
        [f"{F}:3:37: YAML syntax error: cannot read 'maybe' as !!bool"],
    ),
    (
        "timestamp-tag-on-bad-date",  # ValueError: month must be in 1..12
        "version: !!timestamp 2001-13-45\n",
        [f"{F}:1:10: YAML syntax error: cannot read '2001-13-45' as !!timestamp"],
    ),
    (
        "set-tag-on-scalar",  # AttributeError: 'ScalarNode' object has no attribute 'flow_style'
        "version: 1\nagents: !!set abc\n",
        [f"{F}:2:9: YAML syntax error: cannot read 'abc' as !!set"],
    ),
    (
        "set-as-agents",  # was "got CommentedSet"
        "version: 1\nagents: !!set {a, b}\n",
        [f"{F}:2:9: agents must be a list, got a set"],
    ),
    (
        "regex-nested-too-deep",  # RecursionError from the regex compiler
        "version: 1\nruntimes:\n  r:\n    command: [x]\n    ready: '" + "(" * 1500 + ")" * 1500 + "'\n",
        [f"{F}:5:12: invalid ready regex: groups nested too deeply"],
    ),
    (
        "regex-repeat-too-large",  # OverflowError
        "version: 1\nruntimes:\n  r:\n    command: [x]\n    busy: 'a{99999999999}'\n",
        [f"{F}:5:11: invalid busy regex: the repetition number is too large"],
    ),
    (
        "unpaired-surrogate-arg",  # accepted, then UnicodeEncodeError at exec time
        'version: 1\nagents:\n  - {name: a, runtime: demo, args: ["\\ud800"]}\n',
        [f"{F}:3:37: args item must not contain an unpaired surrogate (\\ud800)"],
    ),
    (
        "unpaired-surrogate-workdir",  # UnicodeEncodeError from os.path / pwd
        'version: 1\ndefaults:\n  workdir: "~\\udc80"\n',
        [f"{F}:3:12: workdir must not contain an unpaired surrogate (\\udc80)"],
    ),
    (
        "unpaired-surrogate-command",  # UnicodeEncodeError from os.access at validate
        'version: 1\nruntimes:\n  r: {command: ["\\udfff"]}\nagents:\n  - {name: a, runtime: r}\n',
        [f"{F}:3:17: command item must not contain an unpaired surrogate (\\udfff)"],
    ),
    (
        "long-value-quoted-back",  # a 100 000-character line in the message
        "version: 1\nagents:\n  - {name: " + "a" * 100_000 + ", runtime: demo}\n",
        [
            f"{F}:3:12: invalid agent name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…': must match ^[a-z][a-z0-9_-]{{0,31}}$ (a lowercase letter, then lowercase letters, digits, '_' or '-'; at most 32) because it becomes a tmux session, systemd instance and file name"
        ],
    ),
    (
        "date-and-null-keys",  # were datetime.date(2001, 1, 1) and None
        "version: 1\n2001-01-01: 1\n~: 2\n",
        [
            f"{F}:2:1: unknown key 2001-01-01 (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
            f"{F}:3:1: unknown key null (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
        ],
    ),
    (
        "yaml-directive-of-an-unknown-1x",  # AssertionError from inside ruamel
        "%YAML 1.3\n---\nversion: 1\n",
        [f"{F}:1:7: YAML syntax error: unsupported YAML version '1.3' (use 1.1 or 1.2)"],
    ),
    (
        "yaml-directive-of-version-2",  # was ruamel's own message, at the line start
        "%YAML 2.0\n---\nversion: 1\n",
        [f"{F}:1:7: YAML syntax error: unsupported YAML version '2.0' (use 1.1 or 1.2)"],
    ),
    (
        "duplicate-merge-keys",  # DuplicateKeyError escaped: fatal even when duplicates are allowed
        "version: 1\n<<: {a: 1}\n<<: {b: 2}\n",
        [f"{F}:3:1: duplicate key '<<' (first at line 2)"],
    ),
    (
        "duplicate-key-and-a-bad-value",  # the re-read that lists duplicates raised unhandled
        "version: 1\nversion: 1\nagents: !!seq x\n",
        [
            f"{F}:2:1: duplicate key 'version' (first at line 1)",
            f"{F}:3:9: YAML syntax error: expected a sequence node, but found scalar",
        ],
    ),
    (
        "duplicate-key-spelled-apart",  # 1 and 0x1: was no problem at all, the 0x1 value lost
        "version: 1\n1: a\n0x1: b\n",
        [
            f"{F}:2:1: unknown key 1 (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
            f'{F}:3:1: YAML syntax error: found duplicate key "1" with value "b" (original value: "a") (while constructing a mapping)',
        ],
    ),
    (
        "alias-fan-out",  # a collection was repr'd whole: exponential with nested aliases
        "version: 1\na: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e]\n"
        "defaults: {restart: *f}\n",
        [
            f"{F}:2:1: unknown key 'a' (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
            f"{F}:3:1: unknown key 'b' (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
            f"{F}:4:1: unknown key 'c' (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
            f"{F}:5:1: unknown key 'd' (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
            f"{F}:6:1: unknown key 'e' (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
            f"{F}:7:1: unknown key 'f' (expected one of: version, transport, supervisor, tmux_socket, defaults, agents, runtimes, notify, hosts)",
            f"{F}:7:4: invalid restart policy (a list): expected always, on-failure or never",
        ],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [(d, e) for _, d, e in REGRESSIONS], ids=[i for i, _, _ in REGRESSIONS]
)
def test_each_crash_found_is_now_a_positioned_problem(
    data: str | bytes, expected: list[str]
) -> None:
    raw = data.encode() if isinstance(data, str) else data
    outcome = _outcome(raw)
    assert isinstance(outcome, ConfigError)
    assert outcome.message.split("\n") == expected
    _assert_well_formed(raw, outcome)


# ---------------------------------------------------------------------------- the CLI


def _validate(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mosaic", "fleet", "--roster", str(path), "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_cli_clean(proc: subprocess.CompletedProcess[str], path: Path) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 2), (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    if proc.returncode == 0:
        assert proc.stdout.startswith(f"OK: {path}: ")
        assert all(line.startswith("WARNING: program ") for line in lines), proc.stderr
    else:
        assert proc.stdout == ""
        assert lines, "exit 2 without a word"
        for line in lines:
            assert re.fullmatch(rf"{re.escape(str(path))}:\d+:\d+: \S.*", line), line


@pytest.fixture
def cli_env(fleet_env: dict[str, str]) -> dict[str, str]:
    return {**fleet_env, **ENV, "HOME": fleet_env["HOME"]}


def test_validate_reports_each_regression_without_a_traceback(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    def check(row: tuple[str, str | bytes, list[str]]) -> None:
        name, data, expected = row
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        proc = _validate(path, cli_env)
        _assert_cli_clean(proc, path)
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [e.replace(F, str(path)) for e in expected]

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(check, REGRESSIONS))


@settings(
    max_examples=CLI_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=mutated())
def test_validate_of_any_mutation_exits_0_or_2_without_a_traceback(
    data: bytes, cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "roster.yaml"
    path.write_bytes(data)
    _assert_cli_clean(_validate(path, cli_env), path)
