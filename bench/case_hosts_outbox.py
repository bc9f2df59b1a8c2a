"""The outbox across hosts (docs/hosts.md, "Outbox"): the controller only routes, so queueing
for a remote agent should cost about what the host's own `send --queue` costs over SSH,
and listing every machine's outbox about what the hosts' own listings cost at once.

The hosts are the test lab's (tests/hostlab.py: network namespaces with their own sshd),
so this needs root. Baselines are the hosts' own commands run over the controller's open
SSH connection, with no controller in between, sampled in the same rounds as the figures
(every lab host shares this machine's cores).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, interleaved, run_cmd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

HOSTS = 4
REPEAT = 9
MESSAGE = b"run the test suite again\n"


def run() -> list[Row]:
    from hostlab import Lab, LabHost, available

    why = available()
    if why is not None:
        print(f"# case_hosts_outbox skipped: {why}", file=sys.stderr)
        return []
    lab = Lab.create()
    tmux_dir = tempfile.mkdtemp(prefix="mbo-")
    try:
        hosts = [lab.add(f"h{i}") for i in range(1, HOSTS + 1)]
        names = [h.name for h in hosts]
        roster = lab.dir / "roster.yaml"
        body = "version: 1\n" + lab.hosts_yaml(*names) + "agents:\n"
        body += "".join(f"  - {{name: {n}-a, runtime: demo, host: {n}}}\n" for n in names)
        roster.write_text(body)
        home = lab.dir / "controller"
        env = lab.env(base_env(
            MOSAIC_HOME=str(home), MOSAIC_FLEET_ROSTER=str(roster),
            MOSAIC_TMUX_SOCKET=f"b{uuid.uuid4().hex[:8]}", MOSAIC_FLEET_SUPERVISOR="tmux",
            TMUX_TMPDIR=tmux_dir, SHELL="/bin/bash",
        ))  # fmt: skip
        ssh_dir = home / "fleet" / "run" / "ssh"

        over_ssh = lab.over_master

        def own(hs: list[LabHost], command: str, input: bytes | None = None) -> None:
            """Each host's own command, run there by its mosaic (all at once)."""
            procs = [subprocess.Popen(over_ssh(h, command), cwd=ssh_dir,
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
                     for h in hs]  # fmt: skip
            for p in procs:
                p.communicate(input)

        def queue() -> None:
            subprocess.run([MOSAIC, "fleet", "send", "--queue", "h1-a", "-"], env=env,
                           input=MESSAGE, stdout=subprocess.DEVNULL, check=True)  # fmt: skip

        def listing() -> None:
            run_cmd([MOSAIC, "fleet", "outbox", "--json"], env)

        # Every host gets its roster part and one message first (the connections open).
        for n in names:
            run_cmd([MOSAIC, "fleet", "send", "--queue", f"{n}-a", "warm up"], env)
        measures: dict[str, Callable[[], object]] = {
            "queue": queue,
            "own queue": partial(own, hosts[:1], "mosaic fleet send --queue h1-a -", MESSAGE),
            "list": listing,
            "own lists": partial(own, hosts, "mosaic fleet outbox --json"),
        }
        m = interleaved(measures, REPEAT)
        return [
            Row("hosts: send --queue, a remote agent", m["queue"],
                "host's own send --queue + RTT", m["own queue"]),
            Row(f"hosts: outbox --json, {HOSTS} hosts", m["list"],
                f"{HOSTS} own outbox --json at once + RTT", m["own lists"]),
        ]  # fmt: skip
    finally:
        lab.close()
        shutil.rmtree(tmux_dir, ignore_errors=True)
