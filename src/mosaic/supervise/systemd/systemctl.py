"""`systemctl --user`, as a subprocess (pystemd does not build everywhere).

Every call goes through `run`: one place for the timeout, for reading exit status and
stderr, and for turning failures into `OperationFailed` that names the verb, so a user sees
"systemctl --user start failed: ..." instead of a traceback. Helpers take lists and make one
call for many units wherever systemctl allows it: a fleet of 50 agents must not cost 50
round trips to the manager.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from mosaic.errors import OperationFailed

SYSTEMCTL = "systemctl"
DEFAULT_TIMEOUT = 60.0
# Probing for a manager must be quick: it runs when a fleet decides its supervisor.
PROBE_TIMEOUT = 5.0
# While a long call runs (`tick`), how often its caller gets to look at what has happened.
TICK_S = 0.25

Tick = Callable[[], None]


@dataclass(frozen=True)
class Completed:
    verb: str
    returncode: int
    stdout: str
    stderr: str


def run(
    verb: str,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ok_codes: Iterable[int] = (0,),
    tick: Tick | None = None,
) -> Completed:
    """Run `systemctl --user VERB ARGS`; an exit status outside `ok_codes` is an error.

    Callers whose verb answers through its exit status (is-active, is-enabled) widen
    `ok_codes` and read stdout instead. `tick` is called every TICK_S while the call runs
    (a start or stop of many units can take a while, and the caller reports progress).
    """
    argv = [SYSTEMCTL, "--user", "--no-pager", verb, *args]
    try:
        proc = subprocess.Popen(
            argv,
            env=dict(os.environ if env is None else env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError:
        raise OperationFailed(
            f"systemctl --user {verb} failed: systemctl not found (is systemd installed?)"
        ) from None
    deadline = time.monotonic() + timeout
    with proc:
        try:
            while True:
                left = deadline - time.monotonic()
                try:
                    stdout, stderr = proc.communicate(
                        timeout=max(0.0, min(left, TICK_S) if tick is not None else left)
                    )
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        raise OperationFailed(
                            f"systemctl --user {verb} timed out after {timeout:g}s"
                        ) from None
                    if tick is not None:
                        tick()
        except BaseException:
            proc.kill()  # as subprocess.run does: never left running behind us
            raise
    done = Completed(verb, proc.returncode, stdout, stderr)
    if proc.returncode not in tuple(ok_codes):
        detail = stderr.strip() or stdout.strip() or f"exit status {proc.returncode}"
        raise OperationFailed(f"systemctl --user {verb} failed: {detail}")
    return done


def user_manager_available(
    env: Mapping[str, str] | None = None, timeout: float = PROBE_TIMEOUT
) -> bool:
    """Does a user manager answer? Used to pick the supervisor under `auto`.

    `show-environment` succeeds only when systemctl reached a manager. `is-system-running`
    is no good here: it prints "offline" both for a manager that answers from a container and
    when there is no manager at all.
    """
    try:
        run("show-environment", env=env, timeout=timeout)
    except OperationFailed:
        return False
    return True


def parse_show(text: str) -> list[dict[str, str]]:
    """Blocks of `KEY=value` lines separated by blank lines, one block per unit."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    return blocks


def show(
    units: Sequence[str],
    props: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, dict[str, str]]:
    """Properties of many units in ONE call; blocks are matched to units by their `Id`.

    A unit systemd does not know still gets a block (LoadState=not-found), so every
    requested unit appears in the result. An instance requested by an alias name would come
    back under its real Id; such a unit is looked up by position instead.
    """
    if not units:
        return {}
    wanted = list(dict.fromkeys(["Id", *props]))
    done = run("show", ["-p", ",".join(wanted), "--", *units], env=env, timeout=timeout)
    blocks = parse_show(done.stdout)
    by_id = {b.get("Id", ""): b for b in blocks}
    result: dict[str, dict[str, str]] = {}
    for index, unit in enumerate(units):
        block = by_id.get(unit)
        if block is None and len(blocks) == len(units):
            block = blocks[index]
        if block is None:
            raise OperationFailed(f"systemctl --user show: no answer for {unit}")
        result[unit] = {p: block.get(p, "") for p in wanted}
    return result


def _units_call(
    verb: str,
    units: Sequence[str],
    options: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None,
    timeout: float,
    tick: Tick | None = None,
) -> Completed | None:
    if not units:
        return None
    return run(verb, [*options, "--", *units], env=env, timeout=timeout, tick=tick)


def daemon_reload(
    *, env: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    run("daemon-reload", env=env, timeout=timeout)


def enable(
    units: Sequence[str],
    *,
    now: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    _units_call("enable", units, ["--now"] if now else [], env=env, timeout=timeout)


def disable(
    units: Sequence[str],
    *,
    now: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    _units_call("disable", units, ["--now"] if now else [], env=env, timeout=timeout)


def start(
    units: Sequence[str],
    *,
    no_block: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tick: Tick | None = None,
) -> None:
    """All jobs are queued together; systemctl waits for all and reports each failure."""
    options = ["--no-block"] if no_block else []
    _units_call("start", units, options, env=env, timeout=timeout, tick=tick)


def stop(
    units: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tick: Tick | None = None,
) -> None:
    """Every unit's stop job is queued even when another one fails."""
    _units_call("stop", units, env=env, timeout=timeout, tick=tick)


def reset_failed(
    units: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Clear the failed state and the start-limit counter (a unit that hit its start limit
    refuses to start until this runs). Units the manager has not loaded are skipped, since
    systemctl rejects the whole call for one of them; a failed unit whose file is gone is
    still loaded (LoadState=not-found) and is reset too."""
    if not units:
        return
    props = show(units, ["LoadState", "ActiveState"], env=env, timeout=timeout)
    known = [
        u
        for u in units
        if props[u]["LoadState"] not in ("", "not-found") or props[u]["ActiveState"] == "failed"
    ]
    _units_call("reset-failed", known, env=env, timeout=timeout)


def is_active(
    units: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, str]:
    """ActiveState per unit ("active", "inactive", "failed", "activating", ...)."""
    states = show(units, ["ActiveState"], env=env, timeout=timeout)
    return {u: p["ActiveState"] for u, p in states.items()}


def is_enabled(
    units: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, str]:
    """UnitFileState per unit ("enabled", "disabled", "static", "" when there is no file).

    Read through `show`, not `is-enabled`: the latter prints nothing for a missing unit, so
    with several units its lines cannot be matched back to them.
    """
    states = show(units, ["UnitFileState"], env=env, timeout=timeout)
    return {u: p["UnitFileState"] for u, p in states.items()}


def list_units(
    patterns: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """Names of units the manager has loaded (any state) matching the glob patterns."""
    done = run(
        "list-units",
        ["--all", "--plain", "--no-legend", "--full", "--", *patterns],
        env=env,
        timeout=timeout,
    )
    names = []
    for line in done.stdout.splitlines():
        fields = line.split()
        if fields:
            # A unit whose file is gone may be marked with a leading bullet.
            name = fields[1] if fields[0] in ("●", "*") and len(fields) > 1 else fields[0]
            names.append(name)
    return names
