"""The watcher's latest view of each agent (table `watch_view`).

Written by the watcher whenever an agent's activity or screen changes (at most about once a
second per agent for screen changes alone), read by `status` in the same query as the
supervision records, and read back by a restarted watcher so that an activity it had already
reported is not reported again. Times are Unix seconds (wall clock).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields

from mosaic.screen.classify import Activity


@dataclass(frozen=True)
class AgentView:
    agent: str
    pid: int | None  # the runtime process this view is about
    activity: Activity  # the confirmed (debounced) activity
    since: float  # when the screen first showed the confirmed activity
    observed: Activity  # what the latest screen shows (may still be within the debounce)
    observed_since: float
    last_output: float | None  # when the screen last changed
    turn_since: float | None  # first busy of the current turn; None when no turn runs
    busy_since: float | None  # start of the current busy period
    stuck_sent: bool = False  # `stuck` already reported for this busy period


_COLUMNS = tuple(f.name for f in fields(AgentView))


def read_all(conn: sqlite3.Connection) -> dict[str, AgentView]:
    rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM watch_view").fetchall()  # noqa: S608
    out = {}
    for row in rows:
        try:
            view = AgentView(
                agent=row[0], pid=row[1], activity=Activity(row[2]), since=float(row[3]),
                observed=Activity(row[4]), observed_since=float(row[5]), last_output=row[6],
                turn_since=row[7], busy_since=row[8], stuck_sent=bool(row[9]),
            )  # fmt: skip
        except (ValueError, TypeError):
            continue
        out[view.agent] = view
    return out


def write(conn: sqlite3.Connection, views: Iterable[AgentView]) -> None:
    """Upsert inside the caller's write transaction."""
    marks = ", ".join("?" * len(_COLUMNS))
    conn.executemany(
        f"INSERT OR REPLACE INTO watch_view ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608
        [tuple(str(v) if isinstance(v, Activity) else v for v in astuple(view))
         for view in views],
    )  # fmt: skip


def forget(conn: sqlite3.Connection, agents: Iterable[str]) -> None:
    conn.executemany("DELETE FROM watch_view WHERE agent = ?", [(a,) for a in agents])
