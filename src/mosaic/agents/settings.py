"""An agent's effective settings: what the roster asks it to run with once defaults are
merged into it (docs/reference.md, "apply").

One rule, used twice: the settings are recorded in the agent's record when it starts (both
supervisors, `state.armed`), and computed again from the current roster by `apply` and
`status`; the agent drifted when the two differ. Pure: no file system, no tmux.

What the roster says, not what the launching process's environment made of it. A systemd
unit launches with the user manager's environment, a CLI `start` with a shell's; where they
differ (HOME, SHELL, PATH, the interpreter) the same roster launches a different program
path or directory. Recording those would mark agents drifted that no roster edit touched,
and `apply` would restart them forever. So:
- `command` is a custom runtime's `command:`; a built-in's command is mosaic's own (`shell`
  picks $SHELL, every program is found on PATH at launch) and is named by `runtime` alone.
  An agent's own `PATH` is part of its env, so changing that is still a change.
- `workdir` is the roster's (with `~` and `$VARS` expanded at load), or `~` when it names
  none: the home directory of whoever launches.
- env values are kept as digests: the roster stays the one place a secret is written in
  clear; a digest is enough to tell that a value changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mosaic.config.roster import Agent, RestartPolicy, Roster

SettingsDoc = dict[str, Any]
# The workdir of an agent whose roster names none (`agents.launch.workdir_of`).
DEFAULT_WORKDIR = "~"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Settings:
    runtime: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    # (key, digest of the value), sorted by key: the order keys are written in is not a change.
    env: tuple[tuple[str, str], ...]
    workdir: str
    restart: RestartPolicy
    # The host the agent runs on; None is this machine (the only one until hosts exist).
    host: str | None = None

    def to_doc(self) -> SettingsDoc:
        return {
            "runtime": self.runtime,
            "command": list(self.command),
            "args": list(self.args),
            "env": dict(self.env),
            "workdir": self.workdir,
            "restart": str(self.restart),
            "host": self.host,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> Settings | None:
        """The settings a record holds, or None for anything that is not a whole, well-typed
        document (a record written by an older mosaic, or damaged)."""
        if not isinstance(doc, Mapping):
            return None
        try:
            env = doc["env"]
            host = doc.get("host")
            fields = (doc["runtime"], doc["workdir"], *doc["command"], *doc["args"])
            if not (
                all(isinstance(v, str) for v in fields)
                and isinstance(env, Mapping)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
                and (host is None or isinstance(host, str))
            ):
                return None
            return cls(
                runtime=doc["runtime"],
                command=tuple(doc["command"]),
                args=tuple(doc["args"]),
                env=tuple(sorted(env.items())),
                workdir=doc["workdir"],
                restart=RestartPolicy(doc["restart"]),
                host=host,
            )
        except (KeyError, TypeError, ValueError):
            return None


def effective(roster: Roster, agent: Agent) -> Settings:
    """The settings `agent` of `roster` runs with."""
    runtime = roster.runtime_for(agent)
    return Settings(
        runtime=agent.runtime,
        command=() if runtime.builtin else runtime.command,
        args=agent.args,
        env=tuple(sorted((key, digest(value)) for key, value in agent.env_dict.items())),
        workdir=DEFAULT_WORKDIR if agent.workdir is None else str(agent.workdir),
        restart=agent.restart,
        host=None,
    )


def differences(running: Settings, wanted: Settings) -> list[str]:
    """Why an agent running with `running` does not match `wanted`, one short reason per
    difference (no env value is ever shown); empty when they match."""
    reasons = []
    if running.host != wanted.host:
        reasons.append(f"host {running.host or 'local'} → {wanted.host or 'local'}")
    if running.runtime != wanted.runtime:
        reasons.append(f"runtime {running.runtime} → {wanted.runtime}")
    elif running.command != wanted.command:
        reasons.append("command changed")
    if running.args != wanted.args:
        reasons.append("args changed")
    old, new = dict(running.env), dict(wanted.env)
    for key in sorted(old.keys() | new.keys()):
        if key not in old:
            reasons.append(f"env {key} added")
        elif key not in new:
            reasons.append(f"env {key} removed")
        elif old[key] != new[key]:
            reasons.append(f"env {key} changed")
    if running.workdir != wanted.workdir:
        reasons.append(f"workdir {running.workdir} → {wanted.workdir}")
    if running.restart != wanted.restart:
        reasons.append(f"restart {running.restart} → {wanted.restart}")
    return reasons


NOT_RECORDED = "settings not recorded (started by an older mosaic)"


def drift(running: Settings | None, wanted: Settings) -> list[str]:
    """`differences`, where a running agent whose settings were never recorded counts as
    drifted: nothing proves it matches the roster."""
    return [NOT_RECORDED] if running is None else differences(running, wanted)
