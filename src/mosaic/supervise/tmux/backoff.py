"""What to do when an agent's runtime exits: the pure restart policy of the tmux supervisor.

Kept free of I/O so the policy (restart or not, how long to wait, when to give up) is tested
directly. The rule that prevents a tight loop: every restart waits, the wait doubles with
each quick crash, and after MAX_QUICK_CRASHES quick crashes in a row the agent is `failed`
and left alone until an operator starts it again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mosaic.agents.state import AgentState, Desired
from mosaic.config.roster import RestartPolicy

# A run shorter than this counts as a crash "soon after start".
QUICK_RUN_S = 10.0
MAX_QUICK_CRASHES = 5
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0


@dataclass(frozen=True)
class RestartDecision:
    state: AgentState
    # Seconds to wait before respawning; None means do not respawn.
    delay: float | None


def exit_code(status: str, signal: str) -> int | None:
    """tmux's #{pane_dead_status}/#{pane_dead_signal} -> last_exit (-N for signal N)."""
    if signal.strip().isdigit() and int(signal) > 0:
        return -int(signal)
    if status.strip().lstrip("-").isdigit():
        return int(status)
    return None


def should_restart(policy: RestartPolicy, code: int | None) -> bool:
    if policy is RestartPolicy.ALWAYS:
        return True
    if policy is RestartPolicy.NEVER:
        return False
    return code != 0


def on_exit(state: AgentState, code: int | None, now: float) -> RestartDecision:
    ran_for = now - state.started_at if state.started_at is not None else 0.0
    streak = state.crash_streak + 1 if ran_for < QUICK_RUN_S else 1
    base = replace(state, last_exit=code, pid=None, crash_streak=streak, respawn_due=None)
    if state.desired is not Desired.RUNNING or not should_restart(state.restart_policy, code):
        return RestartDecision(replace(base, desired=Desired.STOPPED), None)
    if streak >= MAX_QUICK_CRASHES:
        return RestartDecision(replace(base, failed=True, desired=Desired.STOPPED), None)
    delay = min(FIRST_DELAY_S * 2 ** (streak - 1), MAX_DELAY_S)
    return RestartDecision(replace(base, respawn_due=now + delay), delay)
