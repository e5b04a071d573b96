"""The alert policy's state machine (vigil.alerts.policy): warm-up, persistence, hysteresis, cooldown."""

from datetime import timedelta

import pytest

from vigil.alerts import AlertPolicy, AlertState, ScoredWindow
from vigil.durations import Span
from vigil.settings import AlertSettings

HOUR, DAY = 3_600_000, 86_400_000
WINDOW = 10 * DAY


def policy(**settings) -> AlertPolicy:
    base = dict(warmup_fraction=0.9, for_points=3, for_duration=timedelta(hours=1), clear_ratio=0.5,
                clear_for=timedelta(hours=2), cooldown=timedelta(days=1))
    return AlertPolicy(AlertSettings(**{**base, **settings}), WINDOW, WINDOW // 240)


def run(p: AlertPolicy, points, threshold=1.0, state=None):
    """(end, score[, history]) points in order → the records and the final state."""
    state, records = state or AlertState(), []
    for point in points:
        end, score, history = (*point, WINDOW) if len(point) == 2 else point
        window = ScoredWindow(sensor_id="s-1", window_start=end - WINDOW, window_end=end, n_events=100, score=score,
                              history_ms=history)
        decision = p.decide(window, state, threshold, "v1", scored_at=0)
        state = decision.state
        if decision.record is not None:
            records.append(decision.record)
    return records, state


def hourly(scores, start=20 * DAY):
    return [(start + i * HOUR, s) for i, s in enumerate(scores)]


def test_a_single_high_score_does_not_alert():
    records, state = run(policy(), hourly([0.1, 5.0, 0.1, 0.1]))
    assert records == [] and state.above_n == 0 and state.alert_id == ""


def test_alert_fires_once_the_score_has_persisted_for_n_points_and_the_duration():
    records, state = run(policy(), hourly([0.1, 2.0, 2.0, 2.0, 2.0]))
    assert [r.kind for r in records] == ["alert"]
    assert records[0].window_end == 20 * DAY + 3 * HOUR  # third point above, two hours after the first
    assert state.alert_id == records[0].alert_id and state.above_since == 20 * DAY + HOUR


def test_points_close_together_need_the_duration_too():
    minutes = [(20 * DAY + i * 60_000, 2.0) for i in range(30)]  # 30 points within half an hour
    assert run(policy(), minutes)[0] == []
    records, _ = run(policy(), minutes + [(20 * DAY + HOUR, 2.0)])
    assert [r.window_end for r in records] == [20 * DAY + HOUR]


def test_a_sensor_warming_up_is_never_alerted_and_its_scores_do_not_count():
    p = policy()
    young = [(20 * DAY + i * HOUR, 5.0, int(0.5 * WINDOW)) for i in range(10)]
    records, state = run(p, young)
    assert records == [] and state == AlertState()
    assert p.warming_up(ScoredWindow(sensor_id="s", window_start=0, window_end=DAY, n_events=10, score=5.0,
                                     history_ms=int(0.89 * WINDOW)))
    assert not p.warming_up(ScoredWindow(sensor_id="s", window_start=0, window_end=DAY, n_events=10, score=5.0,
                                         history_ms=int(0.9 * WINDOW)))
    records, _ = run(p, [(20 * DAY + 10 * HOUR + i * HOUR, 5.0) for i in range(3)], state=state)
    assert len(records) == 1  # three warm points from scratch


def test_hysteresis_holds_an_alert_near_the_threshold_and_clears_after_the_clear_duration():
    records, state = run(policy(), hourly([2.0] * 4 + [0.9, 0.7, 1.1, 0.6, 0.9]))
    assert [r.kind for r in records] == ["alert"]  # 0.6-1.1 sits above the clear level 0.5: no flapping
    records, state = run(policy(), hourly([0.4, 0.3, 0.6, 0.4, 0.3, 0.2, 0.1], start=21 * DAY), state=state)
    assert [r.kind for r in records] == ["cleared"]
    # below since 21d+3h (0.6 reset the first run), cleared two hours later
    assert records[0].window_end == 21 * DAY + 5 * HOUR
    assert state.alert_id == "" and state.alert_end == 21 * DAY + 5 * HOUR


def test_repeated_alert_after_the_cooldown_supersedes_the_open_one():
    p = policy()
    first, state = run(p, hourly([2.0] * 4))
    again, state = run(p, hourly([2.0] * 30, start=20 * DAY + 4 * HOUR), state=state)
    ends = [r.window_end for r in again]
    assert len(again) == 1 and ends[0] - first[0].window_end >= DAY
    assert again[0].alert_id != first[0].alert_id and state.alert_id == again[0].alert_id
    cleared, _ = run(p, hourly([0.1] * 3, start=22 * DAY), state=state)
    assert cleared[0].clears == again[0].alert_id


def test_state_round_trips_through_the_buffer_meta():
    records, state = run(policy(), hourly([2.0] * 4 + [0.1]))
    meta = state.to_meta()
    assert all(isinstance(v, str) for v in meta.values())
    assert AlertState.from_meta(meta) == state
    assert AlertState.from_meta({}) == AlertState()
    assert AlertState.from_meta({"alert_id": "", "alert_end": "5"}) == AlertState(alert_end=5)


def test_the_same_points_give_the_same_ids():
    points = hourly([0.1, 2.0, 2.0, 2.0, 2.0, 0.1, 0.1, 0.1, 0.1])
    first, _ = run(policy(), points)
    second, _ = run(policy(), points)
    assert [r.alert_id for r in first] == [r.alert_id for r in second] and len(first) == 2


def test_spans_follow_the_window_as_bins_shares_or_durations():
    from vigil.durations import Span, format_span, parse_span

    assert parse_span("6 bins") == Span("bins", 6) and parse_span("1bin") == Span("bins", 1)
    assert parse_span("10%") == Span("fraction", 0.1)
    assert parse_span("6h") == Span("duration", 6 * 3_600_000) == parse_span(timedelta(hours=6))
    for text in ("6 bins", "10%", "6h"):
        assert parse_span(format_span(parse_span(text))) == parse_span(text)
    with pytest.raises(ValueError, match="6 bins"):
        parse_span("six bins")
    # The defaults: an hour, 6 h and a day for a 10-day window of 240 bins; a second, 6 s and one
    # second for a 10-second window of 10 bins.
    defaults = AlertSettings()
    day = 86_400_000
    assert [defaults.span_ms(n, 10 * day, 10 * day // 240) for n in ("for_duration", "clear_for", "cooldown")] \
        == [3_600_000, 6 * 3_600_000, day]
    assert [defaults.span_ms(n, 10_000, 1_000) for n in ("for_duration", "clear_for", "cooldown")] == [1_000, 6_000, 1_000]


def test_a_span_setting_reads_bins_shares_and_durations_from_text():
    assert AlertSettings(clear_for="3 bins").clear_for == Span("bins", 3)
    assert AlertSettings(cooldown="25%").span_ms("cooldown", 400, 10) == 100
    with pytest.raises(ValueError, match="not a span"):
        AlertSettings(cooldown="soon")


def test_spans_survive_a_dump_and_a_copy_with_plain_durations():
    settings = AlertSettings(clear_for="3 bins")
    again = AlertSettings.model_validate(settings.model_dump())
    assert again.clear_for == Span("bins", 3)
    copied = settings.model_copy(update={"for_duration": timedelta(hours=2)})  # not validated
    assert copied.span_ms("for_duration", 10 * DAY, HOUR) == 2 * HOUR


def test_a_batch_decided_at_once_equals_each_sensor_decided_point_by_point():
    import numpy as np

    from vigil.alerts import AlertStates, ScoredPoints

    rng = np.random.default_rng(5)
    p = policy(cooldown=timedelta(hours=6), clear_for=timedelta(hours=1))
    # Five sensors' hourly points, interleaved at random (each sensor's in time order): runs of
    # high and low scores so alerts open, repeat and clear; some points warming up.
    windows = []
    for s in range(5):
        level = np.repeat(rng.choice([0.2, 0.7, 2.0], size=12), rng.integers(1, 6, size=12))
        history = np.where(rng.random(len(level)) < 0.1, WINDOW // 2, WINDOW)
        windows.append([ScoredWindow(sensor_id=f"s-{s}", window_start=end - WINDOW, window_end=end, n_events=100,
                                     score=float(score), history_ms=int(h))
                        for end, score, h in zip(20 * DAY + np.arange(len(level)) * HOUR, level, history)])
    order = rng.permutation(np.repeat(np.arange(5), [len(w) for w in windows]))
    cursor = [0] * 5
    batch = []
    for s in order:
        batch.append(windows[s][cursor[s]])
        cursor[s] += 1
    # Some sensors start from a stored state (an open alert, points already above).
    start = {"s-0": AlertState(alert_id="open-0", alert_end=19 * DAY), "s-1": AlertState(above_n=2, above_since=19 * DAY)}

    decided = p.decide_many(ScoredPoints.of(batch), AlertStates.of([start.get(w.sensor_id, AlertState()) for w in batch]),
                            1.0, "v1", scored_at=0)

    expected, states = {}, dict(start)
    for i, window in enumerate(batch):
        one = p.decide(window, states.get(window.sensor_id, AlertState()), 1.0, "v1", scored_at=0)
        states[window.sensor_id] = one.state
        assert decided.states.state(i) == one.state
        if one.record is not None:
            expected[i] = one.record
    assert decided.records == expected
    # The batch exercised the rounds: an alert opened in it and cleared later in it.
    opened = {r.alert_id for r in expected.values() if r.kind == "alert"}
    assert any(r.kind == "cleared" and r.clears in opened for r in expected.values())
