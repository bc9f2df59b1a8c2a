"""The watcher's per-agent tracker (pure): debounce, turns, approvals, stuck, restarts."""

from __future__ import annotations

from mosaic.screen.classify import Activity
from mosaic.store.events import Draft
from mosaic.watch.tracker import Observation, Settings, Tracker

S = Settings(debounce_s=0.5, stuck_after_s=10.0)
IDLE, BUSY, ASK = Activity.IDLE, Activity.BUSY, Activity.AWAITING_APPROVAL


def seen(activity: Activity, pid: int = 100, evidence: tuple[str, ...] = ()) -> Observation:
    return Observation(True, pid, activity, evidence)


def kinds(drafts: list[Draft]) -> list[str]:
    return [str(d.type) for d in drafts]


def run(tracker: Tracker, script: list[tuple[float, Observation | None]]) -> list[Draft]:
    """Feed (time, observation-or-None) in order; None is a tick with no new screen."""
    out: list[Draft] = []
    for t, obs in script:
        out += tracker.tick(t, S) if obs is None else tracker.observe(obs, t, S)
    return out


def test_coming_up_idle_is_not_a_turn() -> None:
    t = Tracker("a")
    assert run(t, [(0.0, seen(IDLE)), (0.6, None), (5.0, None)]) == []
    assert t.view is not None and t.view.activity is IDLE and t.view.since == 0.0


def test_a_spinner_frame_shorter_than_the_debounce_is_no_event() -> None:
    t = Tracker("a")
    run(t, [(0.0, seen(IDLE)), (1.0, None)])
    out = run(t, [(2.0, seen(BUSY)), (2.2, None), (2.3, seen(IDLE)), (3.0, None), (9.0, None)])
    assert out == []


def test_busy_then_idle_reports_the_turn_with_its_length() -> None:
    t = Tracker("a")
    run(t, [(0.0, seen(IDLE)), (1.0, None)])
    out = run(t, [(2.0, seen(BUSY)), (2.4, None)])
    assert out == []  # still within the debounce
    out = run(t, [(2.6, None)])
    assert kinds(out) == ["busy"]
    assert t.view is not None and t.view.since == 2.0  # when the screen first showed it
    out = run(t, [(5.0, seen(IDLE)), (5.2, None), (5.5, None)])
    assert kinds(out) == ["idle"] and out[0].fields == {"busy_s": 3.0}


def test_an_approval_dialog_is_reported_with_its_lines_then_the_turn_ends() -> None:
    t = Tracker("a")
    run(t, [(0.0, seen(IDLE)), (1.0, None), (2.0, seen(BUSY)), (3.0, None)])
    out = run(t, [(4.0, seen(ASK, evidence=("Allow? (y/n)",))), (4.5, None)])
    assert kinds(out) == ["awaiting_approval"]
    assert out[0].fields == {"prompt": ["Allow? (y/n)"]}
    out = run(t, [(6.0, seen(BUSY)), (7.0, None), (8.0, seen(IDLE)), (9.0, None)])
    assert kinds(out) == ["busy", "idle"]
    assert out[1].fields == {"busy_s": 6.0}  # from the turn's first busy screen


def test_stuck_once_per_busy_period() -> None:
    t = Tracker("a")
    run(t, [(0.0, seen(IDLE)), (1.0, None), (2.0, seen(BUSY)), (3.0, None)])
    assert run(t, [(11.9, None)]) == []
    out = run(t, [(12.0, None), (13.0, None), (40.0, None)])
    assert kinds(out) == ["stuck"] and out[0].fields == {"busy_s": 10.0}
    # A new busy period may be stuck again.
    run(t, [(41.0, seen(IDLE)), (42.0, None), (43.0, seen(BUSY)), (44.0, None)])
    assert kinds(run(t, [(53.5, None)])) == ["stuck"]


def test_stuck_after_zero_never_reports() -> None:
    t = Tracker("a")
    never = Settings(debounce_s=0.5, stuck_after_s=0.0)
    t.observe(seen(BUSY), 0.0, never)
    assert kinds(t.tick(1.0, never)) == ["busy"]
    assert t.tick(100_000.0, never) == []


def test_a_restart_or_exit_starts_over_silently() -> None:
    t = Tracker("a")
    run(t, [(0.0, seen(IDLE)), (1.0, None), (2.0, seen(BUSY)), (3.0, None)])
    assert run(t, [(4.0, Observation(False, None)), (5.0, None)]) == []
    # The new process comes up idle: no turn ended (its exit was the supervisor's news).
    assert run(t, [(6.0, seen(IDLE, pid=200)), (7.0, None)]) == []
    assert t.view is not None and t.view.pid == 200 and t.view.turn_since is None


def test_a_restored_view_is_not_reported_again() -> None:
    first = Tracker("a")
    run(first, [(0.0, seen(IDLE)), (1.0, None), (2.0, seen(BUSY)), (3.0, None)])
    again = Tracker("a", first.view)  # a restarted watcher reads the stored view
    assert run(again, [(4.0, seen(BUSY)), (5.0, None)]) == []
    out = run(again, [(6.0, seen(IDLE)), (7.0, None)])
    assert kinds(out) == ["idle"] and out[0].fields == {"busy_s": 4.0}


def test_last_output_follows_screen_changes_only() -> None:
    t = Tracker("a")
    t.observe(Observation(True, 1, IDLE, (), changed=True), 0.0, S)
    t.observe(Observation(True, 1, IDLE, (), changed=False), 5.0, S)
    assert t.view is not None and t.view.last_output == 0.0
    t.observe(Observation(True, 1, IDLE, (), changed=True), 6.0, S)
    assert t.view.last_output == 6.0
