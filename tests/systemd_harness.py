"""A private, throw-away systemd user manager for tests, started without touching the host.

`systemd --user` runs in its own mount namespace with a tmpfs over /run/systemd (so it does
not see, or talk to, the host's system manager), with a private XDG_RUNTIME_DIR (its control
socket lives there) and a private XDG_CONFIG_HOME (its unit directory). `systemctl --user`
run with `UserManager.env` talks to it and to nothing else.

Several such managers may run at once on one machine (other test sessions). A user manager
places its units' cgroups relative to the cgroup it starts in, so two managers started from
the same cgroup would share (and tear down) each other's unit cgroups. Each manager is
therefore moved into a fresh cgroup of its own before it execs; teardown kills whatever is
left in that cgroup and nothing outside it. Where cgroups cannot be created the manager runs
without that isolation and teardown relies on the manager stopping its own units.

Usage: `from systemd_harness import user_manager` in a test module, then take the
`user_manager` fixture; `user_manager.env_for(fleet_env)` is the environment for running
mosaic against it. Without root, unshare or systemd the fixture skips locally and FAILS when
CI=true, because these tests must run in CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SYSTEMD = "/usr/lib/systemd/systemd"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The cgroup move happens in the shell that then execs systemd, so the manager is inside its
# cgroup from its first instruction; `$@` lists the cgroup.procs files to join.
_BOOT = (
    'for f in "$@"; do echo $$ > "$f" || exit 97; done; '
    "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && "
    f"exec {SYSTEMD} --user"
)


class ManagerUnavailable(Exception):
    """This machine cannot run a private user manager (the reason is the message)."""


@dataclass
class UserManager:
    base: Path
    proc: subprocess.Popen[bytes]
    env: dict[str, str]  # for systemctl --user (and mosaic) talking to this manager
    cgroup_tag: str
    cgroups: list[Path] = field(default_factory=list)  # where it and its units run

    @property
    def runtime_dir(self) -> Path:
        return Path(self.env["XDG_RUNTIME_DIR"])

    @property
    def config_home(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"])

    @property
    def unit_dir(self) -> Path:
        return self.config_home / "systemd" / "user"

    @property
    def log(self) -> Path:
        return self.base / "manager.log"

    def env_for(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` (e.g. the fleet_env fixture) pointed at this manager."""
        env = dict(base)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        env["XDG_RUNTIME_DIR"] = self.env["XDG_RUNTIME_DIR"]
        env["XDG_CONFIG_HOME"] = self.env["XDG_CONFIG_HOME"]
        return env

    def systemctl(
        self, *args: str, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["systemctl", "--user", "--no-pager", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"systemctl --user {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
            )
        return proc

    def prop(self, unit: str, name: str) -> str:
        return self.systemctl("show", "-p", name, "--value", unit).stdout.strip()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


# --- cgroups -------------------------------------------------------------------------------


def _cgroup_mounts() -> list[tuple[Path, str]]:
    """(mount point, kind) of every cgroup hierarchy: kind "v2", "name=systemd" or "v1"."""
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            pre, _, post = line.partition(" - ")
            fields, post_fields = pre.split(), post.split()
            if len(fields) < 5 or len(post_fields) < 3:
                continue
            fstype, options = post_fields[0], post_fields[2]
            point = Path(fields[4])
            if fstype == "cgroup2":
                mounts.append((point, "v2"))
            elif fstype == "cgroup":
                kind = "name=systemd" if "name=systemd" in options.split(",") else "v1"
                mounts.append((point, kind))
    return mounts


def _make_cgroups(tag: str) -> list[Path]:
    """A fresh cgroup at the root of the hierarchies systemd tracks its processes in."""
    made: list[Path] = []
    for point, kind in _cgroup_mounts():
        if kind == "v1":
            continue  # controllers: systemd creates its unit paths there by itself
        path = point / tag
        try:
            path.mkdir()
        except OSError:
            for p in made:
                with contextlib.suppress(OSError):
                    p.rmdir()
            return []
        made.append(path)
    return made


def _procs_below(root: Path) -> list[int]:
    pids: list[int] = []
    for dirpath, _dirs, files in os.walk(root):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError, ValueError):
                text = (Path(dirpath) / "cgroup.procs").read_text()
                pids += [int(p) for p in text.split()]
    return pids


def _kill_cgroups(cgroups: list[Path], deadline: float) -> None:
    """SIGKILL everything left in our cgroups (and only there), until they are empty."""
    while True:
        pids = sorted({p for root in cgroups if root.exists() for p in _procs_below(root)})
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _remove_cgroup_trees(tag: str) -> None:
    """Bottom-up rmdir of `tag` in every hierarchy (systemd mirrors its paths into v1 ones)."""
    for point, _kind in _cgroup_mounts():
        root = point / tag
        if not root.is_dir():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: -len(t[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


# --- start / stop --------------------------------------------------------------------------


def start_user_manager() -> UserManager:
    if os.geteuid() != 0:
        raise ManagerUnavailable("a private user manager needs root (unshare -m, mount)")
    for tool in ("unshare", "systemctl", "sh"):
        if shutil.which(tool) is None:
            raise ManagerUnavailable(f"{tool} not found")
    if not os.access(SYSTEMD, os.X_OK):
        raise ManagerUnavailable(f"{SYSTEMD} not found")
    # Short: the manager's sockets live under XDG_RUNTIME_DIR (AF_UNIX path limit).
    base = Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))
    dirs = {
        "XDG_RUNTIME_DIR": base / "r",
        "XDG_CONFIG_HOME": base / "config",
        "XDG_DATA_HOME": base / "data",
        "XDG_STATE_HOME": base / "state",
        "XDG_CACHE_HOME": base / "cache",
        "HOME": base / "home",
    }
    for path in dirs.values():
        path.mkdir(mode=0o700)
    user = os.environ.get("USER") or "root"
    # Like a real user manager: a bare environment, nothing from the test's shell, so units
    # that forget to carry what they need fail here as they would in production.
    manager_env = {k: str(v) for k, v in dirs.items()}
    manager_env.update(PATH=BASE_PATH, USER=user, LOGNAME=user, SYSTEMD_LOG_TARGET="console")
    tag = f"mosaic-test-{uuid.uuid4().hex[:12]}"
    cgroups = _make_cgroups(tag)
    procs_files = [str(c / "cgroup.procs") for c in cgroups]
    log = (base / "manager.log").open("wb")
    try:
        proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", _BOOT, "sh", *procs_files],
            env=manager_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    client_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "DBUS_", "TMUX", "MOSAIC_"))
    }
    client_env.update(
        XDG_RUNTIME_DIR=manager_env["XDG_RUNTIME_DIR"],
        XDG_CONFIG_HOME=manager_env["XDG_CONFIG_HOME"],
    )
    manager = UserManager(base=base, proc=proc, env=client_env, cgroup_tag=tag, cgroups=cgroups)
    private = dirs["XDG_RUNTIME_DIR"] / "systemd" / "private"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            tail = manager.log_tail()
            stop_user_manager(manager)
            raise ManagerUnavailable(
                f"systemd --user exited with status {proc.returncode}: {tail}"
            )
        if private.exists() and manager.systemctl("show-environment", check=False).returncode == 0:
            return manager
        if time.monotonic() > deadline:
            tail = manager.log_tail()
            stop_user_manager(manager)
            raise ManagerUnavailable(f"systemd --user not ready after {START_TIMEOUT}s: {tail}")
        time.sleep(0.05)


def stop_user_manager(manager: UserManager) -> None:
    """SIGTERM (a user manager then stops its units, running their ExecStop=), SIGKILL at
    the deadline, then kill what is left in its cgroups and remove every trace."""
    proc = manager.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
    _kill_cgroups(manager.cgroups, time.monotonic() + STOP_TIMEOUT)
    _remove_cgroup_trees(manager.cgroup_tag)
    shutil.rmtree(manager.base, ignore_errors=True)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def user_manager() -> Iterator[UserManager]:
    """A running private user manager; torn down (with everything it ran) afterwards."""
    try:
        manager = start_user_manager()
    except ManagerUnavailable as exc:
        if _in_ci():
            pytest.fail(f"CI must run the systemd tests, but: {exc}")
        pytest.skip(f"no private systemd user manager here: {exc}")
    try:
        yield manager
    finally:
        # pytest shows a test's captured teardown output only when the test failed: then
        # the manager's own account of its jobs is in the report (CI keeps nothing else).
        print(f"--- the user manager's log (last lines) ---\n{manager.log_tail(80)}")
        stop_user_manager(manager)
