"""`mosaic fleet send --queue` answered without click.

Queueing is meant to cost about what `mosaic --version` costs (a script queues work for
agents in a loop), and click's import alone costs more. When the argv is a plain
`fleet [--mosaic-home H] [--roster R] send --queue [--json] [--ttl D] [--max-attempts N]
(AGENT... | --all) (MESSAGE | -)`, every agent is in the names cache of the roster's current
bytes (`rostercache`, kept by every load of a valid roster), the roster has no hosts (with
hosts, click stores each message on its agent's machine) and the fleet database exists
at the current schema, the messages are stored here with the same SQL `store.outbox` uses
(`store.outboxrows`) and printed the same way; in every other case (`--wait`, help, odd or
unknown values, a roster not loaded since it changed) `run` returns None before reading
stdin, and click answers, errors included. Imports stay within `os`, `sys`, `time`,
`_sqlite3` (without the `functools` it would pull in: `base.quicksqlite`; `sqlite3`'s
Python layer would add `datetime` for adapters this path never uses), `marshal` (and
`json` for `--json`).
"""

from __future__ import annotations

import os
import sys
import time

from mosaic.base.quicksqlite import sqlite3
from mosaic.cli.argv import split_group
from mosaic.config import locate, rostercache
from mosaic.store import outboxrows

FLAGS = ("--queue", "--json", "--all")
VALUED = ("--ttl", "--max-attempts")


def parse(args: list[str]) -> tuple[dict[str, str], dict[str, str], list[str]] | None:
    """(group flags, send's options, its positionals) of a plain `send --queue` argv."""
    split = split_group(args)
    if split is None or split[1][:1] != ["send"]:
        return None
    group, rest = split
    tokens = rest[1:]
    options: dict[str, str] = {}
    positionals: list[str] = []
    only_positionals = False
    while tokens:
        word = tokens.pop(0)
        if only_positionals or word == "-" or not word.startswith("-"):
            positionals.append(word)
            continue
        if word == "--":
            only_positionals = True
            continue
        name, eq, value = word.partition("=")
        if name in options:
            return None
        if name in FLAGS and not eq:
            options[name] = ""
        elif name in VALUED:
            if not eq:
                if not tokens:
                    return None
                value = tokens.pop(0)
            if not value or value.startswith("-"):
                return None
            options[name] = value
        else:
            return None
    return (group, options, positionals) if "--queue" in options else None


def message_from(raw: str) -> tuple[str, str | None]:
    """The message an argument means (`-`: stdin, as UTF-8) and the usage error it is, if
    any; shared with the click command so both refuse alike."""
    if raw == "-":
        data = sys.stdin.buffer.read()
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return "", f"the message on stdin is not UTF-8 ({exc.reason})"
    from mosaic.send.text import problem

    return raw, problem(raw)


def run(args: list[str]) -> int | None:
    parsed = parse(args)
    if parsed is None:
        return None
    group, options, positionals = parsed
    every = "--all" in options
    if len(positionals) != 1 if every else len(positionals) < 2:
        return None
    ttl = None
    if "--ttl" in options:
        ttl = outboxrows.parse_ttl(options["--ttl"])
        if ttl is None:
            return None
    max_attempts = outboxrows.DEFAULT_MAX_ATTEMPTS
    if "--max-attempts" in options:
        if not options["--max-attempts"].isdigit() or int(options["--max-attempts"]) < 1:
            return None
        max_attempts = int(options["--max-attempts"])
    home, roster = locate.home_and_roster(
        group.get("--mosaic-home"), group.get("--roster"), os.environ
    )
    try:
        with open(roster, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"host" in data:
        return None  # agents may run elsewhere (the names cache does not say where): click
    names = rostercache.get_names(locate.run_dir(home), data)
    known = [str(row[0]) for row in (names or {}).get("agents", [])]
    agents = known if every else list(dict.fromkeys(positionals[:-1]))
    if not agents or any(a not in known for a in agents):
        return None
    if positionals[-1] != "-" and not positionals[-1].strip():
        return None  # click says so, stdin untouched
    conn = _open(locate.db_file(home))
    if conn is None:
        return None
    try:
        text, error = message_from(positionals[-1])
        if error is not None:
            sys.stderr.write(error + "\n")
            return 2
        return _store(conn, locate.db_file(home), agents, text, ttl, max_attempts,
                      "--json" in options)  # fmt: skip
    finally:
        conn.close()


def _open(path: str) -> sqlite3.Connection | None:
    """The fleet database if it exists at the schema this code knows (click's path
    creates or upgrades it otherwise)."""
    if not os.path.isfile(path) or any(ch in path for ch in "?#%"):
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30,
                               isolation_level=None)  # fmt: skip
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA synchronous = FULL")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error:
        return None
    if version != outboxrows.SCHEMA_VERSION:
        conn.close()
        return None
    return conn


def _store(conn: sqlite3.Connection, path: str, agents: list[str], text: str,
           ttl: int | None, max_attempts: int, as_json: bool) -> int:  # fmt: skip
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = outboxrows.insert(conn, agents, text, time.time(), ttl, max_attempts)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        sys.stderr.write(f"fleet database {path}: {exc}\n")
        return 1
    if as_json:
        from mosaic.cli.render import json_document

        sys.stdout.write(json_document({"messages": [outboxrows.as_json(r) for r in rows]}))
    else:
        sys.stdout.write("".join(outboxrows.queued_line(r[0], r[1]) + "\n" for r in rows))
    sys.stdout.flush()
    return 0
