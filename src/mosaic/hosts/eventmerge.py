"""The event logs of several machines read as one (docs/hosts.md, "Events"). Pure: no I/O.

Each machine's watcher keeps its own log with its own `seq`, so an event is identified by
`(host, seq)` and every line the controller prints carries `host`. Within one machine the
order is its seq order; across machines a history is ordered by `ts`, ties broken by the
machines' order (this one first, then the roster's) and then seq.

`--since` with hosts:

- `DURATION` (`10m`): every machine reads its own log that recent;
- `SEQ` (`1234`): this machine's events after its seq 1234; every other machine from the
  start of its log (nothing of it was seen);
- `HOST:SEQ,...` (`local:1234,gpu1:88`): each named machine after that seq, each machine
  not named from the start: what a reader that stopped passes to resume where it was.

The dashboard's event stream uses the same pairs as its SSE ids (`cursor_text`), so a page
that reconnects is replayed what it missed of every machine it had heard from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mosaic.config.names import LOCAL_HOST
from mosaic.errors import UsageError
from mosaic.store.eventlines import since_arg


@dataclass(frozen=True)
class Since:
    """Where each machine's log is read from."""

    seqs: Mapping[str, int]  # machine -> events after this seq; machines not named: all
    duration: str | None = None  # as typed; each machine reads its log that recent
    seconds: float = 0.0  # the duration, in seconds

    def args(self, machine: str) -> list[str]:
        """`--since` for `machine`'s own `events` command (nothing: its whole log)."""
        if machine in self.seqs:
            return ["--since", str(self.seqs[machine])]
        if self.duration is not None:
            return ["--since", self.duration]
        return []


USAGE = "give a seq (1234), HOST:SEQ pairs (local:1234,gpu1:88) or a duration (30s, 10m, 2h, 1d)"


def parse_since(text: str | None, machines: Sequence[str]) -> Since:
    """`--since` read against the fleet's machines (`local` first)."""
    if text is None:
        return Since({})
    if ":" not in text and not text.isdigit():
        parsed = since_arg(text, 0.0)
        if parsed is None:
            raise UsageError(f"--since {text!r}: {USAGE}")
        return Since({}, text, -parsed[1] if parsed[1] is not None else 0.0)
    try:
        return Since(parse_cursor(text, machines))
    except ValueError as exc:
        raise UsageError(f"--since {text!r}: {exc}") from None


@dataclass(frozen=True)
class Line:
    """One event of one machine: the machine's own JSON object, and where it came from."""

    host: str
    seq: int
    ts: str
    event: Mapping[str, Any]

    def json(self) -> str:
        """The line the controller prints: `host` first, then the machine's own fields."""
        doc = {"host": self.host, **{k: v for k, v in self.event.items() if k != "host"}}
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)

    @property
    def agent(self) -> str | None:
        agent = self.event.get("agent")
        return agent if isinstance(agent, str) else None


def line_of(host: str, text: str | bytes) -> Line | None:
    """A machine's `events --json` line, or None for anything else (a login script's
    chatter, a torn last line)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    seq, ts = doc.get("seq"), doc.get("ts")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ts, str):
        return None
    return Line(host, seq, ts, doc)


def split_lines(host: str, pending: bytes) -> tuple[list[Line], bytes]:
    """The complete lines in `pending` (what a stream gave so far), and the unfinished rest."""
    *whole, rest = pending.split(b"\n")
    lines = [line for raw in whole if raw.strip() and (line := line_of(host, raw)) is not None]
    return lines, rest


def ordered(lines: Iterable[Line], machines: Sequence[str]) -> list[Line]:
    """A history of several machines: by `ts`, then the machines' order, then seq."""
    rank = {name: i for i, name in enumerate(machines)}
    return sorted(lines, key=lambda ln: (ln.ts, rank.get(ln.host, len(rank)), ln.seq))


def for_agent(lines: Iterable[Line], agent: str | None) -> list[Line]:
    """Only `agent`'s events (all when None). Done here rather than by the host, whose
    roster may not have the agent (yet, or any more) while its log still does."""
    return [ln for ln in lines if agent is None or ln.agent == agent]


def cursor_text(marks: Mapping[str, int]) -> str:
    """A reader's place in every machine's log, as `--since` takes it: `1234` while only
    this machine's log was read (what a fleet without hosts has always used), else
    `local:1234,gpu1:88`."""
    if set(marks) <= {LOCAL_HOST}:
        return str(marks.get(LOCAL_HOST, 0))
    return ",".join(f"{name}:{seq}" for name, seq in marks.items())


def parse_cursor(text: str, known: Sequence[str] | None = None) -> dict[str, int]:
    """A place in every machine's log, as `cursor_text` writes it and `--since` takes it:
    a seq (this machine's) or HOST:SEQ pairs. ValueError saying what is wrong; with `known`,
    a machine not in it is wrong too (without, as for a page's stream id, a host that left
    the roster since is the caller's to drop)."""
    if text.isdigit():
        return {LOCAL_HOST: int(text)}
    marks: dict[str, int] = {}
    for item in text.split(","):
        name, _, seq = item.partition(":")
        if not seq.isdigit() or (known is None and not name):
            raise ValueError(f"{item!r} is not HOST:SEQ; {USAGE}")
        if known is not None and name not in known:
            raise ValueError(f"unknown host {name!r}; known: {', '.join(known)}")
        if name in marks:
            raise ValueError(f"{name} is given twice")
        marks[name] = int(seq)
    return marks
