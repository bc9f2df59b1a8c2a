"""The event vocabulary (docs/reference.md, "events"): every type the fleet log holds and the
fields each carries. The roster's `notify.on` names these, the store validates against them,
the watcher and the supervisors produce them. Kept import-free: the roster checker uses it.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    STARTED = "started"
    EXITED = "exited"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"
    BUSY = "busy"
    IDLE = "idle"
    AWAITING_APPROVAL = "awaiting_approval"
    STUCK = "stuck"
    SENT = "sent"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    NOTIFY_FAILED = "notify_failed"
    WATCHER_STARTED = "watcher_started"


# The type-specific fields, in the order they are printed.
FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.STARTED: ("pid",),
    EventType.EXITED: ("code",),
    EventType.RESTARTING: ("delay_s",),
    EventType.FAILED: (),
    EventType.STOPPED: (),
    EventType.BUSY: (),
    EventType.IDLE: ("busy_s",),
    EventType.AWAITING_APPROVAL: ("prompt",),
    EventType.STUCK: ("busy_s",),
    EventType.SENT: ("outcome", "chars"),
    EventType.DELIVERED: ("id",),
    EventType.DELIVERY_FAILED: ("id", "reason"),
    EventType.NOTIFY_FAILED: ("target", "error"),
    EventType.WATCHER_STARTED: ("pid",),
}

NAMES: tuple[str, ...] = tuple(str(t) for t in EventType)
