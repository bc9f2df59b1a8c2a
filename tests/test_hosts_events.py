"""`events` of a fleet on several machines: each host's watcher keeps its own log, the
controller merges them and every line carries `host`; `--follow` resumes each host from the
last seq it printed from it, across a SIGKILLed watcher there and a restarted sshd; host
names complete where a host is expected (`events --host`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetkit import mosaic, ok, write_roster
from helpers import MOSAIC, pid_alive, wait_until
from hostlab import VENV_BIN, Lab, LabHost, all_running, open_lab, rows
from mosaic.errors import UsageError
from mosaic.hosts import eventmerge
from mosaic.hosts.eventmerge import Line, Since, line_of, ordered, parse_since, split_lines

Event = dict[str, Any]
MACHINES = ["local", "h1", "h2"]


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


# --- pure: what --since means with hosts, and the order of a merged history ----------------


def test_since_with_hosts() -> None:
    assert parse_since(None, MACHINES) == Since({})
    assert parse_since("12", MACHINES) == Since({"local": 12})
    assert parse_since("h1:5,local:7", MACHINES) == Since({"h1": 5, "local": 7})
    ten = parse_since("10m", MACHINES)
    assert (ten.seqs, ten.duration, ten.seconds) == ({}, "10m", 600.0)
    # Each machine's own `events` is asked with its own seq; unnamed ones from the start.
    since = parse_since("h1:5", MACHINES)
    assert since.args("h1") == ["--since", "5"] and since.args("h2") == []
    assert ten.args("h2") == ["--since", "10m"]
    for bad, needle in [("h3:5", "unknown host 'h3'; known: local, h1, h2"),
                        ("h1:x", "'h1:x' is not HOST:SEQ"), ("h1:1,h1:2", "h1 is given twice"),
                        ("soon", "HOST:SEQ pairs"), ("h1:-1", "not HOST:SEQ"),
                        # what reaches a host's command line is only ever digits or a
                        # duration of digits and units
                        ("5m;touch x", "HOST:SEQ pairs"), ("h1:5 --help", "not HOST:SEQ"),
                        ("$(id):1", "unknown host")]:  # fmt: skip
        with pytest.raises(UsageError, match=needle):
            parse_since(bad, MACHINES)


def test_a_merged_history_is_ordered_by_time_then_machine_then_seq() -> None:
    def ev(host: str, seq: int, ts: str) -> Line:
        line = line_of(host, json.dumps({"seq": seq, "ts": ts, "agent": "a", "type": "busy"}))
        assert line is not None
        return line

    got = ordered([ev("h2", 1, "T2"), ev("h1", 9, "T1"), ev("local", 4, "T2"),
                   ev("h1", 3, "T2"), ev("h1", 2, "T2")], MACHINES)  # fmt: skip
    assert [(x.host, x.seq) for x in got] == [
        ("h1", 9), ("local", 4), ("h1", 2), ("h1", 3), ("h2", 1)
    ]
    assert json.loads(got[0].json()) == {"host": "h1", "seq": 9, "ts": "T1", "agent": "a",
                                         "type": "busy"}  # fmt: skip
    # A host cannot pass its events off as another machine's: `host` is the controller's.
    forged = line_of("h2", '{"host":"local","seq":3,"ts":"T","agent":null,"type":"x"}')
    assert forged is not None and json.loads(forged.json())["host"] == "h2"
    # A stream cut mid-line keeps the rest for later; what is not an event line is skipped.
    lines, rest = split_lines("h1", b'motd\n{"seq":1,"ts":"T","agent":null,"type":"x"}\n{"se')
    assert [x.seq for x in lines] == [1] and rest == b'{"se'


def test_a_host_part_keeps_the_notify_targets_of_its_agents() -> None:
    """Each host's watcher notifies for its own agents: a target limited to other machines'
    agents is not in its part (naming them would make the part invalid there), one for
    every agent is, and a list of agents keeps this host's."""
    from mosaic.config.load import loads
    from mosaic.hosts import hostroster

    text = (
        "version: 1\nhosts:\n  gpu1: {ssh: h1}\n  gpu2: {ssh: h2}\n"
        "agents:\n  - {name: a1, runtime: shell, host: gpu1}\n"
        "  - {name: a2, runtime: shell, host: gpu2}\n  - {name: a3, runtime: shell}\n"
        "notify:\n  - {on: [idle], command: [every]}\n"
        "  - {on: [stuck], agents: [a2], command: [only-a2]}\n"
        "  - {on: [failed], agents: [a3, a1], webhook: 'http://127.0.0.1:9/x'}\n"
    )
    gpu1 = loads(hostroster.part_text(text, "gpu1"), Path("/h/roster.yaml"))
    assert [(t.command, t.agents) for t in gpu1.notify] == [(("every",), ()), ((), ("a1",))]
    gpu2 = loads(hostroster.part_text(text, "gpu2"), Path("/h/roster.yaml"))
    assert [(t.command, t.agents) for t in gpu2.notify] == [(("every",), ()),
                                                             (("only-a2",), ("a2",))]  # fmt: skip
    text = text.replace("  - {on: [idle], command: [every]}\n", "")
    bare = hostroster.part_text(text.replace("[a2]", "[a3]"), "gpu2")
    assert loads(bare, Path("/h/roster.yaml")).notify == () and b"notify" not in bare



def test_a_stream_cursor_names_every_machine_once_heard_from() -> None:
    assert eventmerge.cursor_text({"local": 12}) == "12"  # as without hosts
    assert eventmerge.cursor_text({"local": 12, "gpu1": 3}) == "local:12,gpu1:3"
    for marks in ({"local": 12}, {"local": 0, "gpu1": 3, "gpu2": 40}):
        assert eventmerge.parse_cursor(eventmerge.cursor_text(marks)) == marks
    for bad in ("", "x", "-1", "gpu1", "gpu1:", ":3", "gpu1:3,gpu1:4", "gpu1:3;rm", "1.5"):
        with pytest.raises(ValueError):
            eventmerge.parse_cursor(bad)

# --- the lab --------------------------------------------------------------------------------


def _roster(lab: Lab, rec: Path, agents: list[tuple[str, str | None]], *extra: str) -> str:
    """Demo agents that stay busy long enough for the watchers to report it."""
    used = tuple(dict.fromkeys(h for _, h in agents if h is not None))
    body = "version: 1\n" + lab.hosts_yaml(*used) + "agents:\n"
    for name, host in agents:
        args = json.dumps(["--think", "1.2", *extra, "--record", str(rec / f"{name}.jsonl")])
        body += f"  - name: {name}\n    runtime: demo\n    args: {args}\n"
        body += f"    host: {host}\n" if host else ""
    return body


def _events(env: dict[str, str], *args: str) -> list[Event]:
    return [json.loads(line) for line in ok(env, "events", "--json", *args).out.splitlines()]


def _own_log(host: LabHost) -> list[Event]:
    """The host's log as the host itself prints it (no controller, no SSH)."""
    proc = host.run(str(VENV_BIN / "mosaic"), "fleet", "events", "--json")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _turn_done(found: list[Event], host: str, agent: str, after: int = 0) -> bool:
    kinds = {e["type"] for e in found if (e["host"], e["agent"]) == (host, agent)
             and e["seq"] > after}  # fmt: skip
    return {"sent", "busy", "idle"} <= kinds


def test_events_of_every_machine_carry_their_host(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    lab.add("h1")
    lab.add("h2")
    env = lab.env(fleet_env)
    agents = [("loc", None), ("r1", "h1"), ("r2", "h2")]
    write_roster(env, _roster(lab, tmp_path, agents))
    ok(env, "start")
    wait_until(lambda: all_running(env, ["loc", "r1", "r2"]), timeout=40, what="running")
    ok(env, "send", "loc", "r1", "r2", "hello everyone")

    def all_turns() -> list[Event] | None:
        found = _events(env)
        done = all(_turn_done(found, h or "local", a) for a, h in agents)
        return found if done else None

    found = wait_until(all_turns, timeout=40, interval=0.5, what="sent/busy/idle everywhere")
    # Every line names its machine with the name status gives it.
    hosts = {name: row["host"] for name, row in rows(env).items()}
    assert hosts == {"loc": "local", "r1": "h1", "r2": "h2"}
    for e in found:
        assert list(e)[:2] == ["host", "seq"]
        if e["agent"] is not None:
            assert e["host"] == hosts[e["agent"]], e
    assert {e["host"] for e in found if e["type"] == "watcher_started"} == set(MACHINES)
    assert [e["ts"] for e in found] == sorted(e["ts"] for e in found)
    # Within a machine, its own seq order; (host, seq) never repeats.
    for machine in MACHINES:
        seqs = [e["seq"] for e in found if e["host"] == machine]
        assert seqs == sorted(set(seqs)), machine

    # One agent; some machines; the human form names the machine too.
    assert {(e["host"], e["agent"]) for e in _events(env, "r1")} == {("h1", "r1")}
    assert {e["host"] for e in _events(env, "--host", "h2", "--host", "local")} == {
        "h2", "local"
    }  # fmt: skip
    assert {e["type"] for e in _events(env, "--type", "sent")} == {"sent"}
    text = ok(env, "events", "r2", "--type", "sent").out.split()
    assert text[1:5] == ["h2", str(_events(env, "r2", "--type", "sent")[0]["seq"]), "r2", "sent"]

    # Resuming: the last seq of each machine leaves nothing; a machine not named is read
    # from the start of its log.
    last = {m: max(e["seq"] for e in found if e["host"] == m) for m in MACHINES}
    every = ",".join(f"{m}:{s}" for m, s in last.items())
    assert _events(env, "--since", every) == []
    h1_only = _events(env, "--since", f"local:{last['local']},h2:{last['h2']}")
    assert {e["host"] for e in h1_only} == {"h1"}
    assert [e["seq"] for e in h1_only] == [e["seq"] for e in found if e["host"] == "h1"]
    assert {e["host"] for e in _events(env, "--since", "1m")} == set(MACHINES)

    res = mosaic(env, "events", "--since", "h9:1")
    assert res.code == 2 and "unknown host 'h9'; known: local, h1, h2" in res.err
    res = mosaic(env, "events", "--host", "h9")
    assert res.code == 2 and "unknown host 'h9'" in res.err
    ok(env, "stop")


def _watcher_pid(host: LabHost) -> int | None:
    proc = host.run(str(VENV_BIN / "mosaic"), "fleet", "status", "--json")
    watcher = json.loads(proc.stdout)["watcher"]
    return int(watcher["pid"]) if watcher["state"] == "running" and watcher["pid"] else None



def test_follow_across_a_killed_watcher_and_a_restarted_sshd_misses_and_repeats_nothing(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    write_roster(env, _roster(lab, tmp_path, [("loc", None), ("r1", "h1")]))
    ok(env, "start")
    wait_until(lambda: all_running(env, ["loc", "r1"]), timeout=40, what="running")
    out, err = tmp_path / "follow.jsonl", tmp_path / "follow.err"
    with out.open("wb") as sink, err.open("wb") as errors:
        reader = subprocess.Popen([*MOSAIC, "fleet", "events", "--follow", "--json"], env=env,
                                  stdout=sink, stderr=errors)  # fmt: skip

    def followed() -> list[Event]:
        return [json.loads(line) for line in out.read_text().splitlines() if line.endswith("}")]

    def turn(after: int) -> bool:
        return _turn_done(followed(), "h1", "r1", after)

    try:
        wait_until(lambda: h1.mosaic_pids("--follow"), timeout=20,
                   what="h1 followed")  # fmt: skip
        ok(env, "send", "r1", "one")
        wait_until(lambda: turn(0), timeout=30, what="r1's first turn, followed")

        # h1's watcher SIGKILLed: its tmux server restarts it; its log loses nothing.
        killed = _watcher_pid(h1)
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: _watcher_pid(h1) not in (None, killed), timeout=30,
                   what="h1's watcher back")  # fmt: skip
        mark = max(e["seq"] for e in _own_log(h1))
        ok(env, "send", "r1", "two")
        wait_until(lambda: turn(mark), timeout=40, what="r1's turn after the watcher's death")

        # sshd (and every SSH session) gone: the follow of h1 drops; events happen there
        # meanwhile, and here.
        remote_follow = h1.mosaic_pids("--follow")
        h1.kill_sshd()
        mark = max(e["seq"] for e in _own_log(h1))
        sent = h1.run(str(VENV_BIN / "mosaic"), "fleet", "send", "r1", "while away")
        assert sent.returncode == 0, sent.stderr
        wait_until(lambda: _turn_done([{**e, "host": "h1"} for e in _own_log(h1)], "h1", "r1",
                                      mark), timeout=30, what="r1's turn while away")  # fmt: skip
        ok(env, "send", "loc", "local meanwhile")
        wait_until(lambda: _turn_done(followed(), "local", "loc"), timeout=30,
                   what="local events still followed")  # fmt: skip
        # The session's own follow noticed its reader was gone and ended there.
        wait_until(lambda: not any(pid_alive(p) for p in remote_follow), timeout=20,
                   what="h1's orphaned follow ended")  # fmt: skip
        h1.start_sshd()
        wait_until(lambda: turn(mark), timeout=40, what="the turn while away, followed")
        mark = max(e["seq"] for e in _own_log(h1))
        ok(env, "send", "r1", "after")
        wait_until(lambda: turn(mark), timeout=40, what="a later turn, followed")
    finally:
        reader.send_signal(signal.SIGINT)
        reader.wait(timeout=20)
    assert reader.returncode == 0, err.read_text()
    got = followed()
    # Everything each machine logged, exactly once, in its own order.
    theirs = _own_log(h1)
    mine = _events(env, "--host", "local")
    assert [e["seq"] for e in got if e["host"] == "h1"] == [e["seq"] for e in theirs]
    assert [{k: v for k, v in e.items() if k != "host"} for e in got if e["host"] == "h1"] == theirs
    assert [e for e in got if e["host"] == "local"] == mine
    assert sum(e["type"] == "watcher_started" for e in got if e["host"] == "h1") == 2
    assert "host h1 unreachable" in err.read_text()
    assert "Traceback" not in err.read_text()
    # The controller's SSH clients ended, and with them the follow on h1.
    wait_until(lambda: not h1.mosaic_pids("--follow"), timeout=20,
               what="no follow left on h1")  # fmt: skip
    ok(env, "stop")


# --- completion -----------------------------------------------------------------------------

HOSTS_ROSTER = """\
version: 1
hosts:
  gpu1: {ssh: dev@10.0.0.1}
  gpu2: {ssh: gpu2}
agents:
  - {name: alpha, runtime: shell}
  - {name: remote1, runtime: demo, host: gpu1}
  - {name: remote2, runtime: shell, host: gpu2}
"""


def _tab(env: dict[str, str], line: str) -> str:
    words = line.split()
    cword = str(len(words) if line.endswith(" ") else len(words) - 1)
    run_env = dict(env, _MOSAIC_COMPLETE="bash_complete", COMP_WORDS=line, COMP_CWORD=cword)
    proc = subprocess.run([*MOSAIC], env=run_env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stderr == ""
    return proc.stdout


def test_host_names_and_every_machines_agents_complete(fleet_env: dict[str, str]) -> None:
    from mosaic.cli import quickcomplete

    env = fleet_env
    write_roster(env, HOSTS_ROSTER)
    cases = {
        "mosaic fleet events --host ": "plain,local\nplain,gpu1\nplain,gpu2\n",
        "mosaic fleet events --host g": "plain,gpu1\nplain,gpu2\n",
        "mosaic fleet events --type idle --host gpu2": "plain,gpu2\n",
        "mosaic fleet approve re": "plain,remote1\nplain,remote2\n",
        "mosaic fleet events ": "plain,alpha\nplain,remote1\nplain,remote2\n",
        "mosaic fleet send alpha re": "plain,remote1\nplain,remote2\n",
    }
    # The first TAB after an edit is click's (it loads the roster); the next ones are the
    # click-free path's, from the names cache: both give the same answer.
    for line, expected in cases.items():
        assert _tab(env, line) == expected, line
        assert _tab(env, line) == expected, line
    environ = {**env, "_MOSAIC_COMPLETE": "bash_complete",
               "COMP_WORDS": "mosaic fleet events --host ", "COMP_CWORD": "4"}  # fmt: skip
    assert quickcomplete.answer(environ) == cases["mosaic fleet events --host "]


# --- which path answers `events --json` --------------------------------------------------------


def _seed(env: dict[str, str]) -> None:
    from mosaic.config.eventtypes import EventType
    from mosaic.store import db, events

    with db.opened(Path(env["MOSAIC_HOME"]) / "fleet" / "fleet.db") as conn, db.write(conn):
        events.append(conn, [events.draft("a1", EventType.BUSY)])
        events.append(conn, [events.draft("a1", EventType.IDLE, busy_s=1.5)])


def _imports(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    proc = subprocess.run([*MOSAIC[:1], "-X", "importtime", *MOSAIC[1:], "fleet", *args],
                          env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
    found = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    return proc, found


def test_events_json_without_hosts_keeps_its_fast_path_and_with_hosts_merges(
    fleet_env: dict[str, str]
) -> None:
    env = fleet_env
    # A one-machine roster whose text says "hosts" (only in a comment): the first read
    # loads it (click), after which the cached document tells it declares none.
    write_roster(env, "version: 1\n# hosts: later\nagents:\n  - {name: a1, runtime: shell}\n")
    _seed(env)
    plain = ['{"seq":1,', '{"seq":2,']
    first, imported = _imports(env, "events", "--json")
    assert first.returncode == 0 and "click" in imported
    again, imported = _imports(env, "events", "--json")
    assert again.stdout == first.stdout and "click" not in imported
    assert [line[:9] for line in again.stdout.splitlines()] == plain  # no host: as always

    # The same fleet with a host (that refuses connections at once): this machine's lines
    # carry `host`, and the host that could not be read is named, exit 1.
    write_roster(env, "version: 1\nhosts:\n  gpu1: {ssh: 127.0.0.1, port: 1}\n"
                      "agents:\n  - {name: a1, runtime: shell}\n"
                      "  - {name: r1, runtime: shell, host: gpu1}\n")  # fmt: skip
    for _ in range(2):  # click's answer, then (cached roster) still click's: it has hosts
        res, imported = _imports(env, "events", "--json")
        assert res.returncode == 1 and "click" in imported
        assert [json.loads(line)["host"] for line in res.stdout.splitlines()] == ["local"] * 2
        assert "host gpu1 unreachable" in res.stderr and "Traceback" not in res.stderr
    # Only this machine: nothing to reach; resuming this machine's log by its seq.
    assert [e["seq"] for e in _events(env, "--host", "local")] == [1, 2]
    assert [e["seq"] for e in _events(env, "--host", "local", "--since", "local:1")] == [2]
    assert [e["seq"] for e in _events(env, "a1", "--since", "1")] == [2]
