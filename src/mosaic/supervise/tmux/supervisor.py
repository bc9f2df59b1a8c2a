"""The built-in tmux supervisor: start and stop agents; tmux's pane-died hook restarts them
(`hooks.py`).

No process of ours stays resident: supervision is tmux's `remain-on-exit` plus the
`pane-died` hook, so per-agent overhead is the transcript pipe only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace

from mosaic.agents import state
from mosaic.agents.launch import launch, preflight
from mosaic.agents.settings import effective
from mosaic.agents.state import AgentState
from mosaic.agents.teardown import kill_session, kill_tree
from mosaic.config.eventtypes import EventType
from mosaic.config.names import WATCHER_SESSION
from mosaic.config.roster import Agent
from mosaic.config.runtimes import UNKNOWN, Runtime
from mosaic.errors import MosaicError, OperationFailed
from mosaic.fleet import Fleet
from mosaic.store import events
from mosaic.supervise.tmux import watcher
from mosaic.tmux.panes import list_panes
from mosaic.tmux.server import ensure_server, kill_server


def _nothing() -> None:
    pass


def start(
    fleet: Fleet, agents: list[Agent], progress: Callable[[], None] = _nothing
) -> list[str]:
    """Start what is not running, calling `progress` after each agent, then the watcher
    (any start means a fleet to watch); returns one line per agent for the operator."""
    preflight(fleet.roster, agents)
    ensure_server(fleet.tmux, fleet.paths)
    panes = list_panes(fleet.tmux) or {}
    lines = []
    started = []
    for agent in agents:
        pane = panes.get(agent.name)
        if pane is not None and not pane.dead:
            lines.append(f"{agent.name}: already running (pid {pane.pid})")
            continue
        settings = effective(fleet.roster, agent)
        state.update(fleet.paths, agent.name, state.armed(agent, time.time(), settings))
        new = launch(fleet.tmux, fleet.paths, fleet.roster, agent, pane)
        state.update(fleet.paths, agent.name, _with_pid(new.pid))
        started.append(events.draft(agent.name, EventType.STARTED, pid=new.pid))
        lines.append(f"{agent.name}: started (pid {new.pid})")
        progress()
    events.record(fleet.paths.db, started)
    lines.append(watcher.ensure(fleet))
    return lines


def _with_pid(pid: int) -> Callable[[AgentState], AgentState]:
    return lambda s: replace(s, pid=pid)


def stop(
    fleet: Fleet, agents: list[Agent], whole: bool, progress: Callable[[], None] = _nothing
) -> list[str]:
    """Stop every agent given (in parallel), even when some fail, calling `progress` as
    each one is done; raise one error naming all failures."""
    for agent in agents:
        state.update(fleet.paths, agent.name, state.disarmed)
    panes = list_panes(fleet.tmux)
    if panes is None:
        return [f"{a.name}: not running" for a in agents]
    targets: list[tuple[str, Runtime]] = [
        (a.name, fleet.roster.runtime_for(a)) for a in agents
    ]
    if whole:
        known = {name for name, _ in targets} | {WATCHER_SESSION}
        targets += [(name, UNKNOWN) for name in panes if name not in known]
    stopped: list[str] = []

    def stop_one(item: tuple[str, Runtime]) -> str:
        name, runtime = item
        pane = panes.get(name)
        if pane is None:
            return f"{name}: not running"
        kill_tree(fleet.tmux, pane, runtime)
        kill_session(fleet.tmux, name)
        stopped.append(name)
        return f"{name}: stopped"

    lines, failures = _each(stop_one, targets, progress)
    events.record(fleet.paths.db, [events.draft(n, EventType.STOPPED) for n in sorted(stopped)])
    if whole:
        # After the agents, so that it hands their `stopped` events to notify on its way out.
        line = watcher.stop(fleet)
        if line:
            lines.append(line)
    if whole and not failures:
        kill_server(fleet.tmux)
        lines.append("holder: stopped")
    if failures:
        raise OperationFailed("\n".join(lines + failures))
    return lines


def _each(
    fn: Callable[[tuple[str, Runtime]], str],
    items: list[tuple[str, Runtime]],
    progress: Callable[[], None],
) -> tuple[list[str], list[str]]:
    """Run `fn` for every item in parallel, calling `progress` as each finishes; collect
    successes and failure messages in the items' order."""
    done: dict[int, str] = {}
    failed: dict[int, str] = {}
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(items)))) as pool:
        futures = {pool.submit(fn, item): index for index, item in enumerate(items)}
        for future in as_completed(futures):
            index = futures[future]
            try:
                done[index] = future.result()
            except MosaicError as exc:
                failed[index] = f"{items[index][0]}: stop failed: {exc.message}"
            progress()
    return [done[i] for i in sorted(done)], [failed[i] for i in sorted(failed)]
