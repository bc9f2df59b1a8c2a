"""Notifications (docs/reference.md, "notify"): the roster's `notify:` targets, told about
each event once.

Matching is pure (`matches`). Running never blocks the watcher: every notification is a job
on a small thread pool, each with a 10 s timeout (a command is killed with its whole process
group, a webhook try is abandoned); a webhook is tried 3 times with backoff. A failure
becomes a `notify_failed` event (recorded from the job), which is never sent back to the
target that failed, so a broken target cannot feed itself.

A command's argv is exec'd directly, never through a shell: the event travels as JSON on
its stdin and as MOSAIC_EVENT_TYPE / MOSAIC_EVENT_AGENT / MOSAIC_EVENT_SEQ in its
environment. The desktop notifier passes event text after `--`, so it can never be read as
an option.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures

from mosaic.config.eventtypes import EventType
from mosaic.config.roster import NotifyTarget
from mosaic.store.events import Draft, Event, draft

TIMEOUT_S = 10.0
WEBHOOK_TRIES = 3
WEBHOOK_BACKOFF_S = (1.0, 2.0)
WORKERS = 16
ERROR_CHARS = 300


def matches(target: NotifyTarget, event: Event) -> bool:
    if event.type not in target.on:
        return False
    if event.type == EventType.NOTIFY_FAILED and event.fields.get("target") == target.label:
        return False
    return not target.agents or event.agent in target.agents


def payload(event: Event) -> bytes:
    return json.dumps(event.as_json(), ensure_ascii=False).encode()


def event_env(base: Mapping[str, str], event: Event) -> dict[str, str]:
    env = dict(base)
    env.update(
        MOSAIC_EVENT_TYPE=event.type,
        MOSAIC_EVENT_AGENT=event.agent or "",
        MOSAIC_EVENT_SEQ=str(event.seq),
    )
    return env


def run_command(
    argv: Sequence[str], data: bytes, env: Mapping[str, str], timeout: float = TIMEOUT_S
) -> str | None:
    """Run `argv` (no shell) with `data` on stdin; None on exit 0, else what went wrong."""
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=dict(env), start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError as exc:
        return f"cannot run {argv[0]}: {exc.strerror or exc}"
    try:
        _, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return f"timed out after {timeout:g} s"
    if proc.returncode == 0:
        return None
    tail = err.decode("utf-8", errors="replace").strip().splitlines()[-1:] if err else []
    code = proc.returncode
    what = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return (what + (f": {tail[0]}" if tail else ""))[:ERROR_CHARS]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def post(
    url: str,
    data: bytes,
    timeout: float = TIMEOUT_S,
    tries: int = WEBHOOK_TRIES,
    backoff: Sequence[float] = WEBHOOK_BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """POST `data` as JSON; None on a 2xx answer, else the last failure (after `tries`)."""
    error = "not tried"
    for attempt in range(tries):
        request = urllib.request.Request(  # noqa: S310 (http/https only: checked in the roster)
            url, data=data, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "mosaic-fleet"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                status = int(response.status)
            if 200 <= status < 300:
                return None
            error = f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            error = str(exc.reason)
        except (OSError, ValueError) as exc:
            error = str(exc) or type(exc).__name__
        if attempt + 1 < tries:
            sleep(backoff[min(attempt, len(backoff) - 1)])
    return f"{error} (after {tries} tries)"[:ERROR_CHARS]


def desktop(event: Event, env: Mapping[str, str]) -> str | None:
    """A desktop notification through `notify-send` where a desktop session is reachable;
    elsewhere there is nothing to show it on, and nothing is done."""
    exe = shutil.which("notify-send", path=env.get("PATH"))
    if exe is None or not any(
        env.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")
    ):
        return None
    title = f"mosaic: {event.agent or 'fleet'} {event.type}"
    return run_command([exe, "--app-name=mosaic", "--", title, summary(event)], b"", env)


def summary(event: Event) -> str:
    prompt = event.fields.get("prompt")
    if isinstance(prompt, list) and prompt:
        return "\n".join(str(line) for line in prompt)[:500]
    return " ".join(f"{k}={v}" for k, v in event.fields.items()) or event.type


class Notifier:
    """Runs notification jobs off the watcher's thread; failures are recorded through
    `record` (called from the job's thread)."""

    def __init__(
        self,
        record: Callable[[Sequence[Draft]], object],
        env: Mapping[str, str] | None = None,
        workers: int = WORKERS,
    ) -> None:
        self.record = record
        self.env = dict(os.environ if env is None else env)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")
        self.pending: set[Future[None]] = set()

    def dispatch(self, targets: Sequence[NotifyTarget], events: Sequence[Event]) -> int:
        jobs = 0
        for event in events:
            for target in targets:
                if matches(target, event):
                    future = self.pool.submit(self._job, target, event)
                    self.pending.add(future)
                    future.add_done_callback(self.pending.discard)
                    jobs += 1
        return jobs

    def _job(self, target: NotifyTarget, event: Event) -> None:
        try:
            if target.command:
                error = run_command(target.command, payload(event), event_env(self.env, event))
            elif target.webhook:
                error = post(target.webhook, payload(event))
            else:
                error = desktop(event, self.env)
        except Exception as exc:  # a bug must not kill the pool's thread silently
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            print(f"mosaic watcher: notify {target.label} for event {event.seq} failed: "
                  f"{error}", file=sys.stderr, flush=True)  # fmt: skip
            self.record([draft(event.agent, EventType.NOTIFY_FAILED, target=target.label,
                               error=error)])  # fmt: skip

    def close(self, wait_s: float) -> None:
        """Give running jobs `wait_s` to finish, then stop taking new ones."""
        if self.pending:
            wait_futures(list(self.pending), timeout=wait_s)
        self.pool.shutdown(wait=False, cancel_futures=True)
