"""Test hosts: network namespaces with their own sshd, reached over real OpenSSH.

Each host is a network namespace joined to the root namespace by a veth pair on
10.231.N.0/30 (.1 this side, .2 the host), with its own `sshd` listening only on
10.231.N.2:22, its own host key and an authorized_keys entry whose `environment=`
options give the host its own environment: its mosaic home, tmux socket, TMUX_TMPDIR,
supervisor and a PATH where `mosaic` is this venv's (or is not, for a host without it).
N is taken under an flock (/tmp/mosaic-hostlab-N.lock), so concurrent test runs never
share an address.

The controller side gets an `ssh` on PATH that is OpenSSH with the lab's own config file
(`-F`): its known_hosts, host key checking on, no agent; the user's ~/.ssh is never read.
The roster gives the lab's client key with `identity:`.

The machine's own login scripts are hidden from the hosts' sessions: sshd runs in a private
mount namespace where root's ~/.bashrc is an empty file, as on a fresh host (otherwise each
SSH session pays for whatever the machine's shell start-up does, e.g. `pyenv init`).

Teardown kills, by pid, every process in each namespace (sshd, sessions, the hosts' tmux
servers and agents) and the controllers' SSH control masters (`ssh -O check` names their
pids), then deletes the links and namespaces, also when the test failed.
Needs root (network namespaces): without it the tests skip, except under CI=true.

A host can be given a CPU of its own (`LabHost.cap_cpu`): every process in its namespace,
and whatever they start later, goes into a cgroup capped at a share of one core. Lab hosts
otherwise share this machine's cores, so N of them answering at once slow one another down
as N real hosts would not; with N shares that add up to less than the machine, each host's
speed no longer depends on what the others do (bench/case_hosts.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleetkit import ok
from helpers import wait_until
from mosaic.demo_agent import read_recording

VENV_BIN = Path(sys.executable).parent
SSHD = "/usr/sbin/sshd"
NET_FIRST, NET_LAST = 1, 250
CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")
CPU_PERIOD_US = 10_000  # short, so that a small share is spread evenly, not in bursts


def available() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "ssh", "ssh-keygen", "unshare", "ss"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not os.path.exists(SSHD):
        return f"{SSHD} not found (apt-get install openssh-server)"
    return None


def _run(*argv: str, check: bool = True, timeout: float = 20) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class LabHost:
    name: str
    n: int
    dir: Path
    lock_fd: int
    ns: str
    home: Path
    socket: str
    tmux_dir: Path
    key: Path
    sshd_config: Path
    log: Path
    env: dict[str, str]
    cgroup: Path | None = None

    @property
    def addr(self) -> str:
        return f"10.231.{self.n}.2"

    @property
    def target(self) -> str:
        return f"root@{self.addr}"

    # -- sshd

    def start_sshd(self) -> None:
        bashrc = os.path.join(pwd.getpwuid(0).pw_dir, ".bashrc")
        empty = self.dir / "empty"
        empty.touch()
        script = '[ -e "$2" ] && mount --bind "$1" "$2"; exec "$3" -D -e -f "$4"'
        with self.log.open("ab") as log:
            subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "unshare", "-m", "--propagation", "private",
                 "sh", "-c", script, "sh", str(empty), bashrc, SSHD, str(self.sshd_config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        wait_until(self._listening, timeout=15, what=f"sshd of {self.name} listening")

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.addr, 22), timeout=0.5):
                return True
        except OSError:
            return False

    def kill_sshd(self) -> None:
        """Kill the host's sshd and every SSH session on it; its tmux and agents stay."""
        for pid in self.pids():
            if _comm(pid) == "sshd":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(_comm(p) == "sshd" for p in self.pids()), timeout=10,
                   what=f"sshd of {self.name} gone")  # fmt: skip

    def cap_cpu(self, share: float) -> None:
        """Cap this host at `share` of one core: everything running in its namespace now,
        and all it starts later (cgroup membership is inherited), sessions included."""
        if self.cgroup is None:
            v2 = (CGROUP_V2 / "cgroup.controllers").exists()
            self.cgroup = (CGROUP_V2 if v2 else CGROUP_V1_CPU) / f"mosaic-lab-{self.ns}"
            if v2:
                (CGROUP_V2 / "cgroup.subtree_control").write_text("+cpu")
            self.cgroup.mkdir(exist_ok=True)  # or left by a run that was killed
        quota = max(1000, int(CPU_PERIOD_US * share))
        if (self.cgroup / "cpu.max").exists():
            (self.cgroup / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        else:
            (self.cgroup / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (self.cgroup / "cpu.cfs_quota_us").write_text(str(quota))
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                (self.cgroup / "cgroup.procs").write_text(str(pid))

    def link(self, up: bool) -> None:
        """Take the host's link down (packets vanish: a silent partition) or up again."""
        _run("ip", "link", "set", f"mhl{self.n}r", "up" if up else "down")

    def pids(self) -> list[int]:
        return [int(p) for p in _run("ip", "netns", "pids", self.ns, check=False).split()]

    def mosaic_pids(self, word: str) -> list[int]:
        """This host's mosaic processes whose command line holds `word` as one argument."""
        found = []
        for pid in self.pids():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"mosaic" in a for a in argv) and word.encode() in argv:
                found.append(pid)
        return found

    def accepted(self) -> int:
        """New SSH connections sshd accepted (it logs one line per authentication)."""
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def agent_sessions(self) -> list[str]:
        """The agents' tmux sessions on this host (the watcher's `_watcher` is not one)."""
        out = self.tmux("list-sessions", "-F", "#{session_name}")
        return [name for name in out.split() if not name.startswith("_")]

    def sessions(self) -> int:
        """SSH sessions (remote commands) sshd started, over any connection."""
        return self.log.read_text(errors="replace").count("Starting session:")

    def established(self) -> int:
        out = _run("ip", "netns", "exec", self.ns, "ss", "-Htn", "state", "established",
                   "( sport = :22 )")  # fmt: skip
        return len([line for line in out.splitlines() if line.strip()])

    # -- the host's own view

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A command on the host, in its namespace and with its environment (not via SSH)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def tmux(self, *args: str) -> str:
        return self.run("tmux", "-L", self.socket, *args).stdout


@dataclass
class Lab:
    dir: Path
    client_key: Path
    known_hosts: Path
    ssh_config: Path
    bin: Path
    hosts: dict[str, LabHost] = field(default_factory=dict)
    controllers: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls) -> Lab:
        root = Path(tempfile.mkdtemp(prefix="mhl-", dir="/tmp"))
        os.chmod(root, 0o700)
        key = root / "client_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostlab", "-f", str(key))
        known = root / "known_hosts"
        known.touch()
        config = root / "ssh_config"
        config.write_text(
            "Host *\n"
            f"  UserKnownHostsFile {known}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  IdentityAgent none\n"
            "  IdentitiesOnly yes\n"
        )
        bin_dir = root / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "ssh"
        real = shutil.which("ssh")
        assert real is not None
        wrapper.write_text(
            f"#!/bin/sh\nexec {shlex.quote(real)} -F {shlex.quote(str(config))} \"$@\"\n"
        )
        wrapper.chmod(0o755)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        return cls(root, key, known, config, bin_dir)

    def add(self, name: str, mosaic: bool = True, path_first: Path | None = None) -> LabHost:
        """A new host with its own namespace, sshd, home and tmux socket; `mosaic`: this
        venv's bin is on its PATH; `path_first`: a directory put before everything."""
        n, lock_fd = _take_net()
        d = self.dir / name
        d.mkdir()
        ns = f"mhl{n}"
        host = LabHost(
            name=name, n=n, dir=d, lock_fd=lock_fd, ns=ns, home=d / "home",
            socket=f"lab{uuid.uuid4().hex[:8]}", tmux_dir=Path(tempfile.mkdtemp(prefix="mht-")),
            key=d / "host_key", sshd_config=d / "sshd_config", log=d / "sshd.log", env={},
        )  # fmt: skip
        self.hosts[name] = host
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host.key))
        _run("ip", "netns", "add", ns)
        here, there = f"mhl{n}r", f"mhl{n}n"
        _run("ip", "link", "add", here, "type", "veth", "peer", "name", there)
        _run("ip", "link", "set", there, "netns", ns)
        _run("ip", "addr", "add", f"10.231.{n}.1/30", "dev", here)
        _run("ip", "link", "set", here, "up")
        _run("ip", "-n", ns, "addr", "add", f"10.231.{n}.2/30", "dev", there)
        _run("ip", "-n", ns, "link", "set", there, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        path = f"{VENV_BIN}:/usr/bin:/bin" if mosaic else "/usr/bin:/bin"
        if path_first is not None:
            path = f"{path_first}:{path}"
        host.env = {
            "PATH": path, "MOSAIC_HOME": str(host.home), "MOSAIC_TMUX_SOCKET": host.socket,
            "MOSAIC_FLEET_SUPERVISOR": "tmux", "TMUX_TMPDIR": str(host.tmux_dir),
            "SHELL": "/bin/bash", "HOME": pwd.getpwuid(0).pw_dir, "LANG": "C.UTF-8",
        }  # fmt: skip
        options = ",".join(f'environment="{k}={v}"' for k, v in host.env.items())
        authorized = d / "authorized_keys"
        authorized.write_text(f"{options} {(self.client_key.with_suffix('.pub')).read_text()}")
        host.sshd_config.write_text(
            f"ListenAddress {host.addr}:22\n"
            f"HostKey {host.key}\n"
            f"AuthorizedKeysFile {authorized}\n"
            f"PidFile {d / 'sshd.pid'}\n"
            "PermitUserEnvironment yes\n"
            "StrictModes no\n"  # the lab lives under /tmp (world-writable)
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "LogLevel VERBOSE\n"  # one "Accepted publickey" line per new connection
            "MaxSessions 64\n"
            "MaxStartups 64\n"
        )
        pub = host.key.with_suffix(".pub").read_text().split()
        with self.known_hosts.open("a") as f:
            f.write(f"{host.addr} {pub[0]} {pub[1]}\n")
        host.start_sshd()
        return host

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """A controller's environment: the lab's ssh first on PATH, no SSH agent."""
        env = {k: v for k, v in base.items() if k != "SSH_AUTH_SOCK"}
        env["PATH"] = f"{self.bin}:{VENV_BIN}:{base.get('PATH', '/usr/bin:/bin')}"
        self.controllers.append(Path(env["MOSAIC_HOME"]) / "fleet" / "run" / "ssh")
        return env

    def over_master(self, host: LabHost, command: str) -> list[str]:
        """ssh straight to `host` over the controller's open master (run it with the
        controller's `fleet/run/ssh` as its working directory), no mosaic on this side."""
        return [str(self.bin / "ssh"), "-o", f"ControlPath={host.name}", "-T", "--",
                host.target, command]  # fmt: skip

    def hosts_yaml(self, *names: str, home: bool = False) -> str:
        lines = ["hosts:"]
        for name in names:
            h = self.hosts[name]
            extra = f", home: {h.home}" if home else ""
            lines.append(f"  {name}: {{ssh: {h.target}, identity: {self.client_key}{extra}}}")
        return "\n".join(lines) + "\n"

    def demo_roster(
        self, rec: Path, agents: list[tuple[str, str | None]], hosts: tuple[str, ...] = ()
    ) -> str:
        """A roster of demo agents (name, host or None for this machine), each recording
        what it receives in rec/<name>.jsonl."""
        used = hosts or tuple(dict.fromkeys(h for _, h in agents if h is not None))
        body = "version: 1\n" + (self.hosts_yaml(*used) if used else "") + "agents:\n"
        for name, host in agents:
            args = json.dumps(["--think", "0", "--record", str(rec / f"{name}.jsonl")])
            body += f"  - name: {name}\n    runtime: demo\n    args: {args}\n"
            if host is not None:
                body += f"    host: {host}\n"
        return body

    def close(self) -> None:
        for control_dir in self.controllers:
            _kill_masters(control_dir, self.bin / "ssh")
        for host in self.hosts.values():
            for _ in range(3):
                pids = host.pids()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.1)
            if host.cgroup is not None:
                _remove_cgroup(host.cgroup)
            _run("ip", "link", "del", f"mhl{host.n}r", check=False)
            _run("ip", "netns", "del", host.ns, check=False)
            shutil.rmtree(host.tmux_dir, ignore_errors=True)
            os.close(host.lock_fd)
        shutil.rmtree(self.dir, ignore_errors=True)


def _remove_cgroup(path: Path) -> None:
    """Remove a host's cgroup once the processes just killed have left it."""
    end = time.monotonic() + 5
    while True:
        try:
            path.rmdir()
            return
        except OSError:  # busy while a dying process is still in it
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def _kill_masters(control_dir: Path, ssh: Path) -> None:
    """Kill each control master whose socket is in `control_dir`, by the pid it reports."""
    if not control_dir.is_dir():
        return
    for sock in control_dir.iterdir():
        proc = subprocess.run(
            [str(ssh), "-o", f"ControlPath={sock}", "-O", "check", "--", "lab"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        text = proc.stderr
        if "(pid=" in text:
            pid = text.split("(pid=", 1)[1].split(")", 1)[0]
            if pid.isdigit():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


def _take_net() -> tuple[int, int]:
    """A free 10.231.N.0/30, held by an flock until the host is torn down."""
    for n in range(NET_FIRST, NET_LAST + 1):
        fd = os.open(f"/tmp/mosaic-hostlab-{n}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        # A namespace left by a killed run (its lock died with it) is cleared first.
        _run("ip", "link", "del", f"mhl{n}r", check=False)
        _run("ip", "netns", "del", f"mhl{n}", check=False)
        return n, fd
    raise RuntimeError("no free lab network (10.231.1-250.0/30)")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# -- what host tests ask of a controller

def status_doc(env: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok(env, "status", "--json").out)
    return doc


def rows(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in status_doc(env)["agents"]}


def all_running(env: dict[str, str], names: list[str]) -> dict[str, dict[str, Any]] | None:
    found = rows(env)
    return found if all(found[n]["state"] == "running" for n in names) else None


def recording(path: Path) -> list[str]:
    return read_recording(str(path)) if path.exists() else []



def open_lab() -> Iterator[Lab]:
    """The body of each host test module's `lab` fixture (a fixture imported from another
    module would shadow the parameter that uses it)."""
    why = available()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the host lab cannot run: {why}")
        pytest.skip(f"the host lab cannot run: {why}")
    lab = Lab.create()
    try:
        yield lab
    finally:
        lab.close()
