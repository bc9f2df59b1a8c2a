"""The tmux supervisor's restart policy (supervise/tmux/backoff.py), tested directly.

These are the decisions the pane-died hook applies to every exit: what the exit code was,
whether the policy restarts it, how long to wait, and when to give up. The hook and the
delayed respawn are exercised end to end in test_lifecycle.py; here each rule is pinned
without tmux, including the ones a real fleet reaches only after minutes (the cap).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from mosaic.agents.settings import Settings
from mosaic.agents.state import AgentState, Desired, armed
from mosaic.config.roster import Agent, RestartPolicy
from mosaic.supervise.tmux import backoff
from mosaic.supervise.tmux.backoff import exit_code, on_exit, should_restart

T0 = 1_000_000.0
QUICK = 0.2  # seconds a crashing runtime lives: well inside backoff.QUICK_RUN_S


def start(agent: Agent, at: float) -> AgentState:
    """What an operator's start records (the settings do not matter to the policy)."""
    settings = Settings("shell", (), (), (), "~", agent.restart, None)
    return armed(agent, at, settings)(AgentState())


def running(policy: RestartPolicy = RestartPolicy.ON_FAILURE, at: float = T0) -> AgentState:
    """The record right after an operator's start, as the supervisors write it."""
    return start(Agent("a1", "shell", restart=policy), at)


def respawned(state: AgentState, at: float) -> AgentState:
    """What the delayed respawn records when it brings the pane back (hooks.respawn)."""
    return replace(state, restarts=state.restarts + 1, started_at=at, respawn_due=None)


def crash_loop(
    state: AgentState, code: int | None, crashes: int
) -> tuple[list[float | None], AgentState]:
    """`crashes` exits, each QUICK seconds after its (re)start; the delays decided, in order."""
    delays: list[float | None] = []
    now = state.started_at or T0
    for _ in range(crashes):
        now += QUICK
        decision = on_exit(state, code, now)
        delays.append(decision.delay)
        state = decision.state
        if decision.delay is None:
            break
        now += decision.delay
        state = respawned(state, now)
    return delays, state


# --- exit_code: tmux's #{pane_dead_status} / #{pane_dead_signal} --------------------------


@pytest.mark.parametrize(
    ("status", "signal", "code"),
    [
        ("0", "", 0),
        ("4", "", 4),
        ("255", "", 255),
        ("-1", "", -1),
        ("", "9", -9),  # killed by SIGKILL
        ("", "15", -15),
        ("0", "9", -9),  # a signal wins over whatever status tmux also shows
        ("3", "0", 3),  # signal 0 means "no signal"
        (" 7\n", "", 7),
        ("", "", None),  # tmux 3.3a sometimes keeps no status at all
        ("x", "", None),
        ("", "SIGKILL", None),
    ],
)
def test_exit_code_from_tmux_fields(status: str, signal: str, code: int | None) -> None:
    assert exit_code(status, signal) == code


# --- should_restart: the roster's `restart:` ------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        (RestartPolicy.ALWAYS, 0, True),
        (RestartPolicy.ALWAYS, 4, True),
        (RestartPolicy.ALWAYS, -9, True),
        (RestartPolicy.ALWAYS, None, True),
        (RestartPolicy.ON_FAILURE, 0, False),  # a clean exit is the runtime's own choice
        (RestartPolicy.ON_FAILURE, 4, True),
        (RestartPolicy.ON_FAILURE, -9, True),
        (RestartPolicy.ON_FAILURE, None, True),  # an unknown end is not a clean one
        (RestartPolicy.NEVER, 0, False),
        (RestartPolicy.NEVER, 4, False),
        (RestartPolicy.NEVER, -9, False),
        (RestartPolicy.NEVER, None, False),
    ],
)
def test_should_restart_per_policy(policy: RestartPolicy, code: int | None, restart: bool) -> None:
    assert should_restart(policy, code) is restart


@pytest.mark.parametrize("policy", list(RestartPolicy))
@pytest.mark.parametrize("code", [0, 4, -9])
def test_on_exit_follows_the_policy(policy: RestartPolicy, code: int) -> None:
    decision = on_exit(running(policy), code, T0 + QUICK)
    if should_restart(policy, code):
        assert decision.delay == backoff.FIRST_DELAY_S
        assert decision.state.desired is Desired.RUNNING
        assert decision.state.respawn_due == T0 + QUICK + backoff.FIRST_DELAY_S
    else:
        assert decision.delay is None
        assert decision.state.desired is Desired.STOPPED
        assert decision.state.respawn_due is None
    assert decision.state.last_exit == code
    assert decision.state.pid is None
    assert not decision.state.failed


# --- on_exit: backoff, give-up, reset ---------------------------------------------------------


def test_delays_double_from_half_a_second_then_the_fifth_quick_crash_fails() -> None:
    delays, final = crash_loop(running(), 4, crashes=10)
    assert delays == [0.5, 1.0, 2.0, 4.0, None]
    assert backoff.MAX_QUICK_CRASHES == 5
    assert final.failed and final.desired is Desired.STOPPED
    assert final.restarts == 4  # four respawns happened before it gave up
    assert final.crash_streak == 5
    assert final.last_exit == 4 and final.pid is None and final.respawn_due is None


def test_delays_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """With five quick crashes the doubling stops at 4 s, far below the cap; the cap is what
    keeps a policy that allows more crashes from waiting hours."""
    monkeypatch.setattr(backoff, "MAX_QUICK_CRASHES", 12)
    delays, final = crash_loop(running(), 4, crashes=12)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0, None]
    assert max(d for d in delays if d is not None) == backoff.MAX_DELAY_S
    assert final.failed


def test_restart_always_gives_up_on_a_loop_of_clean_exits_too() -> None:
    delays, final = crash_loop(running(RestartPolicy.ALWAYS), 0, crashes=10)
    assert delays == [0.5, 1.0, 2.0, 4.0, None]
    assert final.failed


def test_a_long_run_resets_the_streak() -> None:
    _, state = crash_loop(running(), 4, crashes=3)  # three quick crashes: streak 3
    assert state.crash_streak == 3 and state.started_at is not None
    later = state.started_at + backoff.QUICK_RUN_S  # ran the full QUICK_RUN_S: not quick
    decision = on_exit(state, 4, later)
    assert decision.delay == backoff.FIRST_DELAY_S
    assert decision.state.crash_streak == 1
    assert not decision.state.failed
    just_short = on_exit(state, 4, state.started_at + backoff.QUICK_RUN_S - 0.01)
    assert just_short.delay == 2 * 2 * 2 * backoff.FIRST_DELAY_S  # streak 4: 4 s
    assert just_short.state.crash_streak == 4


def test_long_runs_between_crashes_never_fail() -> None:
    state = running()
    now = T0
    for _ in range(20):
        now += backoff.QUICK_RUN_S + 1
        decision = on_exit(state, 4, now)
        assert decision.delay == backoff.FIRST_DELAY_S
        now += backoff.FIRST_DELAY_S
        state = respawned(decision.state, now)
    assert not state.failed and state.restarts == 20


def test_an_exit_with_no_start_time_counts_as_quick() -> None:
    state = replace(running(), started_at=None, crash_streak=backoff.MAX_QUICK_CRASHES - 1)
    decision = on_exit(state, 4, T0 + 3600)
    assert decision.delay is None and decision.state.failed


def test_an_operator_start_after_failed_starts_the_backoff_afresh() -> None:
    _, failed = crash_loop(running(), 4, crashes=5)
    assert failed.failed
    settings = Settings("shell", (), (), (), "~", RestartPolicy.ON_FAILURE, None)
    again = armed(Agent("a1", "shell"), T0 + 100, settings)(failed)
    assert not again.failed and again.crash_streak == 0 and again.restarts == 0
    assert again.generation == failed.generation + 1
    delays, _ = crash_loop(again, 4, crashes=2)
    assert delays == [0.5, 1.0]


# --- never respawn what an operator stopped -------------------------------------------------


@pytest.mark.parametrize("policy", list(RestartPolicy))
@pytest.mark.parametrize("code", [0, 4, -9, -15, None])
def test_a_stopped_agent_is_never_respawned(policy: RestartPolicy, code: int | None) -> None:
    """`stop` disarms the record before it ends the process tree, so the exit it causes
    (SIGTERM, SIGKILL, or the runtime quitting on its keys) finds desired=stopped."""
    from mosaic.agents.state import disarmed

    stopped = disarmed(running(policy))
    decision = on_exit(stopped, code, T0 + QUICK)
    assert decision.delay is None
    assert decision.state.desired is Desired.STOPPED
    assert decision.state.respawn_due is None
    assert not decision.state.failed  # stopped, not given up on
    assert decision.state.last_exit == code
    assert decision.state.generation == stopped.generation


def test_a_never_started_agent_is_not_respawned() -> None:
    decision = on_exit(AgentState(), -9, T0)
    assert decision.delay is None and decision.state.desired is Desired.STOPPED


def test_a_failed_agent_that_exits_again_stays_failed_and_unscheduled() -> None:
    _, failed = crash_loop(running(RestartPolicy.ALWAYS), 4, crashes=5)
    decision = on_exit(failed, 4, T0 + 600)
    assert decision.delay is None
    assert decision.state.failed and decision.state.desired is Desired.STOPPED
