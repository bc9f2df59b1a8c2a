"""The apply plan (docs/reference.md, "apply"): what to do so the running fleet matches the
roster, decided from values alone — the roster's effective settings, the recorded ones,
and what runs — so every rule is testable without tmux or systemd.

- in the roster, not running                        -> start
- in the roster, running, settings differ            -> restart (one reason per difference)
- in the roster, running, settings match             -> unchanged (never touched)
- left the roster, and still ours somewhere          -> stop (and forget its record)

"Ours somewhere" for an agent that left: its session still exists (live or dead), its
record still wants it running (a respawn could bring it back), or its systemd unit files or
enablement are installed. A session on the fleet's socket that mosaic never launched (no
record) is not an agent and is left alone. A rename is a stop of the old name and a start
of the new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mosaic.agents.settings import Settings, drift
from mosaic.agents.state import AgentState, Desired
from mosaic.config.names import is_agent_name


class Action(StrEnum):
    START = "start"
    RESTART = "restart"
    STOP = "stop"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Step:
    agent: str
    action: Action
    reasons: tuple[str, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        return {"name": self.agent, "action": str(self.action), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class UnitChange:
    """One systemd unit file that lags the roster, or a unit to (dis)enable (systemd
    supervisor only)."""

    target: str  # a file's path, or a unit's name for enable/disable
    action: str  # "create" | "update" | "remove" | "enable" | "disable"

    def to_doc(self) -> dict[str, Any]:
        return {"target": self.target, "action": self.action}


@dataclass(frozen=True)
class Observed:
    """What runs now, by agent name."""

    running: frozenset[str]  # a live pane: the runtime (or its launch) is up
    sessions: frozenset[str]  # any session, its pane live or dead
    installed: frozenset[str] = frozenset()  # systemd drop-in or enablement present


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    units: tuple[UnitChange, ...] = ()

    def of(self, action: Action) -> list[Step]:
        return [s for s in self.steps if s.action is action]

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action is not Action.UNCHANGED]

    @property
    def empty(self) -> bool:
        """Nothing to do: applying it would touch no agent and no file."""
        return not self.changes and not self.units

    def to_doc(self) -> dict[str, Any]:
        return {
            "agents": [s.to_doc() for s in self.steps],
            "units": [u.to_doc() for u in self.units],
            "changes": len(self.changes) + len(self.units),
        }


def _start_reason(record: AgentState | None) -> str:
    if record is not None and record.failed:
        return "failed (gave up after repeated crashes)"
    if record is not None and record.desired is Desired.STOPPED and record.generation:
        return "stopped"
    return "not running"


def _left(name: str, record: AgentState | None, observed: Observed) -> bool:
    if name in observed.installed:
        return True
    if record is None:
        return False  # a session mosaic never launched is not ours to stop
    return name in observed.sessions or record.desired is Desired.RUNNING


def compute(
    wanted: Mapping[str, Settings],
    records: Mapping[str, AgentState],
    observed: Observed,
    units: Sequence[UnitChange] = (),
) -> Plan:
    """The plan for a roster whose agents (in roster order) want `wanted`, given every
    agent's record (roster or not) and what runs."""
    steps = []
    for name, settings in wanted.items():
        record = records.get(name)
        if name not in observed.running:
            steps.append(Step(name, Action.START, (_start_reason(record),)))
            continue
        reasons = drift(record.settings if record is not None else None, settings)
        action = Action.RESTART if reasons else Action.UNCHANGED
        steps.append(Step(name, action, tuple(reasons)))
    # Only agents can have left the roster: the watcher's own record is not one.
    candidates = {n for n in set(records) | observed.installed if is_agent_name(n)}
    for name in sorted(candidates - set(wanted)):
        if _left(name, records.get(name), observed):
            steps.append(Step(name, Action.STOP, ("left the roster",)))
    return Plan(tuple(steps), tuple(units))
