"""`status --json` across hosts (docs/hosts.md, "Scaling"): the controller asks every host
at once over its multiplexed connection, so a fleet over N hosts should cost about one
host's own `status` plus one SSH round trip, whatever N.

The hosts are the test lab's (tests/hostlab.py: network namespaces with their own sshd),
10 `shell` agents each, so this needs root. A host's own status is measured as the budget
names it: `ssh HOST mosaic fleet status --json` over the open connection, i.e. the host's
own status plus one SSH round trip, with no controller in between. Every lab host shares
this machine's CPUs, which real hosts do not: N hosts answering at once here compete for
the same cores. So each fan-out is measured against two baselines, sampled in the same
rounds so that each sees the same machine load:

* solo: the slowest host's own status + RTT, one host at a time (the budget's baseline);
* together: every host's own status + RTT started at the same moment, as the fan-out makes
  them run: what N hosts cost on shared cores, so the ratio is what the controller adds.

Each controller runs its fleet's watcher, as `start` leaves it, so `status --json` is
answered by it (`watch/serve.py`: it asks the hosts itself); one figure is also taken with
the watcher never asked (the command building the document itself, its hosts asked ahead by
`hosts.prefetch`), the path of a caller whose environment the watcher cannot serve.

Separate machines are then emulated too: the hosts measured are each capped at a share of
one core (1/4 each for 4 hosts, 1/8 each for 8: one core in all, the other left to the
controller), so that a host answers as fast whether the others are busy or not. Those
rows carry the budget's targets (docs/hosts.md, "Scaling": 4 hosts against the slowest
single host's own status + RTT; 8 hosts against 4); their hosts are slower than this
machine by as much.

The controller's own CPU per added host (the command, the watcher's answer and the ssh
clients) and the memory of a control master are reported too: that is what grows with N on
a real network, where each host brings its own CPU.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from benchlib import MOSAIC, Row, base_env, interleaved, rss_kib, run_cmd

from mosaic.config.load import load
from mosaic.hosts.ssh import Link

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
if TYPE_CHECKING:
    from hostlab import LabHost

AGENTS_PER_HOST = 10
HOSTS = 8
SIZES = (1, 4, HOSTS)
REPEAT = 9
SAME = 1.2  # "8 hosts cost about the same wall time as 4"


def _roster(lab: object, names: list[str]) -> str:
    from hostlab import Lab

    assert isinstance(lab, Lab)
    body = "version: 1\n" + lab.hosts_yaml(*names) + "agents:\n"
    for name in names:
        for i in range(AGENTS_PER_HOST):
            body += f"  - {{name: {name}-a{i}, runtime: shell, host: {name}}}\n"
    return body


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _process_cpu(pid: int) -> float:
    """CPU seconds of `pid` and of its children it has waited for (the watcher's ssh
    clients): utime, stime, cutime, cstime of /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _watcher_pid(env: dict[str, str]) -> int:
    deadline = time.monotonic() + 30
    while True:
        out = subprocess.run([MOSAIC, "fleet", "status", "--json"], env=env,
                             capture_output=True, check=True).stdout  # fmt: skip
        pid = json.loads(out)["watcher"]["pid"]
        if isinstance(pid, int):
            return pid
        if time.monotonic() > deadline:
            raise RuntimeError("the controller's watcher did not come up")
        time.sleep(0.2)


def _own_cpu(hosts: list[LabHost], measures: dict[str, Callable[[], object]]) -> list[Row]:
    """The budget as on real hosts, each with a CPU of its own: the hosts measured are each
    capped at a share of one core (tests/hostlab.py, `cap_cpu`) that together make one core,
    leaving the other to the controller. A host then answers about as fast whether the
    others are busy or not, as separate machines do (the "at once vs alone" rows check it);
    it is also that much slower than this machine, which the rows' baselines show."""
    rows: list[Row] = []
    for count, sizes in ((4, (4,)), (HOSTS, (4, HOSTS))):
        share = 1 / count
        label = f"hosts (1/{count} core each)"
        try:
            for h in hosts[:count]:
                h.cap_cpu(share)
        except OSError as e:
            print(f"# case_hosts: hosts not given their own CPU ({e})", file=sys.stderr)
            return rows
        keys = ["rtt", f"together {count}"] + [f"own {h.name}" for h in hosts[:count]]
        keys += [f"fan {n}" for n in sizes]
        m = interleaved({k: measures[k] for k in keys}, REPEAT)
        slowest = {n: max(m[f"own {h.name}"] for h in hosts[:n]) for n in sizes}
        rows.append(Row(f"{label}: {count} own statuses at once", m[f"together {count}"],
                        "slowest own status alone", slowest[count]))  # fmt: skip
        for n in sizes:
            rows.append(Row(f"{label}: status --json, {n} hosts x {AGENTS_PER_HOST}",
                            m[f"fan {n}"], "slowest own status + RTT", slowest[n],
                            target=1.5))  # fmt: skip
        if len(sizes) > 1:
            rows.append(Row(f"{label}: status, {HOSTS} hosts vs 4", m[f"fan {HOSTS}"],
                            "4 hosts", m["fan 4"], target=SAME))  # fmt: skip
    return rows


def run() -> list[Row]:
    from hostlab import Lab, available

    why = available()
    if why is not None:
        print(f"# case_hosts skipped: {why}", file=sys.stderr)
        return []
    lab = Lab.create()
    saved_path = os.environ.get("PATH", "")
    tmux_dir = tempfile.mkdtemp(prefix="mbh-")
    try:
        names = [f"h{i}" for i in range(1, HOSTS + 1)]
        hosts = [lab.add(n) for n in names]
        # One controller home per roster size: each keeps its own parsed-roster cache (one
        # slot per home), as a user's single roster would, and its own connections.
        envs, rosters = {}, {}
        for n in SIZES:
            path = lab.dir / f"roster-{n}.yaml"
            path.write_text(_roster(lab, names[:n]))
            rosters[n] = path
            envs[n] = lab.env(base_env(
                MOSAIC_HOME=str(lab.dir / f"controller-{n}"), MOSAIC_FLEET_ROSTER=str(path),
                MOSAIC_TMUX_SOCKET=f"b{uuid.uuid4().hex[:8]}", MOSAIC_FLEET_SUPERVISOR="tmux",
                TMUX_TMPDIR=tmux_dir, SHELL="/bin/bash",
            ))  # fmt: skip
        env = envs[HOSTS]
        home = lab.dir / f"controller-{HOSTS}"
        for n in SIZES:  # each controller's watcher, too (one per home)
            run_cmd([MOSAIC, "fleet", "start"], envs[n])
        roster_hosts = load(rosters[HOSTS], env=env).hosts
        watchers = {n: _watcher_pid(envs[n]) for n in SIZES}

        def status(n: int) -> None:
            run_cmd([MOSAIC, "fleet", "status", "--json"], envs[n])

        from statuskit import NOT_ASKED

        def unserved(n: int) -> None:
            """The command with the watcher never asked: what a caller it cannot serve runs."""
            run_cmd([sys.executable, "-c", NOT_ASKED, "fleet", "status", "--json"], envs[n])

        ssh_dir = home / "fleet" / "run" / "ssh"

        over_ssh = lab.over_master

        def own(hs: list[LabHost]) -> None:
            """Each host's own `status --json`, run there by its mosaic (all at once):
            what the hosts cost plus one round trip, with no controller in between."""
            procs = [subprocess.Popen(over_ssh(h, "mosaic fleet status --json"), cwd=ssh_dir,
                                      stdout=subprocess.DEVNULL) for h in hs]  # fmt: skip
            for p in procs:
                p.wait()

        # Every figure is sampled in the same rounds, so each sees the same machine load.
        measures: dict[str, Callable[[], object]] = {
            "rtt": partial(subprocess.run, over_ssh(hosts[0], "true"), cwd=ssh_dir, check=True)
        }
        for h in hosts:
            measures[f"own {h.name}"] = partial(own, [h])
        for n in SIZES:
            measures[f"fan {n}"] = partial(status, n)
            measures[f"together {n}"] = partial(own, hosts[:n])
        measures["unserved 4"] = partial(unserved, 4)
        for n in SIZES:
            status(n)  # opens the connections, fills the roster cache
        m = interleaved(measures, REPEAT)
        rtt = m["rtt"]

        rows: list[Row] = []
        for n in SIZES:
            slowest = max(m[f"own {h.name}"] for h in hosts[:n])
            label = f"hosts: status --json, {n} host{'s' if n > 1 else ''} x {AGENTS_PER_HOST}"
            # At this machine's full speed, reported only: with one host the controller's
            # fixed cost (an interpreter's start, the watcher's exchange) against a host
            # answering in ~50 ms; with more, the lab hosts share these cores, and "together"
            # is what the controller adds. The budget's rows are `_own_cpu`'s.
            rows.append(Row(f"{label} (vs solo)", m[f"fan {n}"], "slowest own status + RTT",
                            slowest))  # fmt: skip
            if n > 1:
                rows.append(Row(f"{label} (vs together)", m[f"fan {n}"],
                                f"{n} own statuses at once + RTT", m[f"together {n}"],
                                target=1.5))  # fmt: skip
        rows.append(Row(f"hosts: status, {HOSTS} hosts vs 4", m[f"fan {HOSTS}"], "4 hosts",
                        m["fan 4"]))  # fmt: skip
        rows.append(Row("hosts: status --json, 4 hosts, watcher not asked (vs together)",
                        m["unserved 4"], "4 own statuses at once + RTT",
                        m["together 4"]))  # fmt: skip
        rows.append(Row("hosts: one SSH round trip (open master)", rtt,
                        "own status + RTT, h1", m["own h1"]))  # fmt: skip

        cpu: dict[int, float] = {}
        for n in (1, HOSTS):
            before = _children_cpu() + _process_cpu(watchers[n])
            for _ in range(REPEAT):
                # The controller alone: the command is our child, the watcher answering it
                # waits for its ssh clients (its one-second tick counts too, a few ms); the
                # hosts' work is sshd's children, in the namespaces.
                status(n)
            cpu[n] = (_children_cpu() + _process_cpu(watchers[n]) - before) / REPEAT
        per_host = (cpu[HOSTS] - cpu[1]) / (HOSTS - 1)
        rows.append(Row("hosts: controller CPU per added host", per_host,
                        "controller CPU, 1 host", cpu[1]))  # fmt: skip
        os.environ["PATH"] = env["PATH"]  # the lab's ssh, never this user's ~/.ssh
        masters = [Link(h, ssh_dir).master_pid() for h in roster_hosts]
        rss = [rss_kib(pid) for pid in masters if pid is not None]
        if rss:
            rows.append(Row("hosts: ssh control master RSS per host", sum(rss) / len(rss),
                            "-", 1.0, unit="KiB"))  # fmt: skip
        rows.extend(_own_cpu(hosts, measures))
        for n in SIZES:
            run_cmd([MOSAIC, "fleet", "stop"], envs[n], check=False)
        return rows
    finally:
        os.environ["PATH"] = saved_path
        lab.close()
        shutil.rmtree(tmux_dir, ignore_errors=True)
