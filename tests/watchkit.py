"""Helpers for watcher tests: read the event log as a user would (`events --json`)."""

from __future__ import annotations

import json
from typing import Any

from fleetkit import ok, status
from helpers import wait_until

Event = dict[str, Any]


def events(env: dict[str, str], *args: str) -> list[Event]:
    out = ok(env, "events", "--json", *args).out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wait_event(
    env: dict[str, str], type_: str, agent: str | None = None, after: int = 0,
    timeout: float = 30.0,
) -> Event:  # fmt: skip
    def find() -> Event | None:
        for e in events(env, "--since", str(after), "--type", type_):
            if agent is None or e["agent"] == agent:
                return e
        return None

    return wait_until(find, timeout=timeout, interval=0.2, what=f"event {type_} {agent or ''}")


def watcher(env: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = status(env)["watcher"]
    return doc


def watcher_running(env: dict[str, str]) -> dict[str, Any] | None:
    w = watcher(env)
    return w if w["state"] == "running" and w["pid"] else None


def last_seq(env: dict[str, str]) -> int:
    got = events(env)
    return int(got[-1]["seq"]) if got else 0
