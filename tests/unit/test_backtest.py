"""The backtest's scoring points, the outcome figures and the budget threshold: pure logic."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from vigil.alerts.backtest import scoring_points
from vigil.alerts.budget import budget_threshold, expected_rate
from vigil.alerts.outcome import alert_outcome, alertable_days, truth_onsets
from vigil.buffer import Cadence
from vigil.settings import AlertSettings

HOUR, DAY = 3_600_000, 86_400_000


@pytest.mark.parametrize("every_ms,min_events", [(0, 1), (0, 5), (HOUR, 1), (4 * HOUR, 6)])
def test_scoring_points_are_the_last_event_of_each_completed_span_with_a_full_window(every_ms, min_events):
    ts = np.cumsum(np.random.default_rng(every_ms % 7 + min_events).integers(1, 3 * HOUR, 200))
    length, bin_ms, cadence = DAY, HOUR, Cadence(every_ms)
    got = scoring_points(cadence, min_events, length, bin_ms)("s-1", ts).tolist()
    # The definition, event by event: the window (the day's bins up to the event's) holds
    # min_events events, and (with a cadence) the next event falls in a later span.
    steps, phase = length // bin_ms, cadence.phase("s-1")
    expected = []
    for i, t in enumerate(ts):
        full = ((ts[: i + 1] // bin_ms) > t // bin_ms - steps).sum() >= min_events
        completed = every_ms == 0 or (i + 1 < len(ts) and (ts[i + 1] - phase) // every_ms > (t - phase) // every_ms)
        if full and completed:
            expected.append(i)
    assert got == expected
    assert got  # the case scores something


def test_a_cadence_scores_each_sensor_at_most_once_per_span_with_its_own_phase():
    ts = np.arange(0, 10 * DAY, 10 * 60_000)  # every ten minutes
    cadence = Cadence(HOUR)
    got = {s: cadence.points(s, ts, np.ones(len(ts), bool)) for s in ("sensor-1", "sensor-2")}
    for sensor, idx in got.items():
        spans = cadence.spans(sensor, ts[idx])
        assert np.all(np.diff(spans) == 1)
        assert len(idx) == len(np.unique(cadence.spans(sensor, ts))) - 1  # the open last span waits
    assert cadence.phase("sensor-1") != cadence.phase("sensor-2")  # their points spread over the hour
    assert not np.array_equal(ts[got["sensor-1"]] % HOUR, ts[got["sensor-2"]] % HOUR)


def alert(sensor, end, kind="alert"):
    return {"sensor_id": sensor, "window_end": end, "kind": kind}


def test_outcome_counts_alerts_before_the_onset_as_false_and_measures_lead():
    onsets = {"a": 10 * DAY, "b": 10 * DAY, "n1": None, "n2": None}
    alerts = [alert("a", 9 * DAY), alert("a", 10 * DAY + 5 * HOUR), alert("a", 10 * DAY + 6 * HOUR, "cleared"),
              alert("b", 10 * DAY + 11 * HOUR), alert("n1", 12 * DAY)]
    days = {"a": 5.0, "b": 5.0, "n1": 4.0, "n2": 6.0}
    out = alert_outcome(alerts, days, onsets=onsets)
    assert (out["alerts"], out["cleared"], out["sensors_alerted"]) == (4, 1, 3)
    assert out["alert_precision"] == 0.5  # a's early alert and n1's are false
    assert out["sensor_recall"] == 1.0 and out["early_alerts"] == 1 and out["false_alerts"] == 1
    assert out["false_alerts_per_100_sensor_days"] == pytest.approx(100 * 1 / 10)
    assert out["median_lead_hours"] == 8.0  # (5 h, 11 h)


def test_outcome_from_labels_alone_and_without_either():
    days = {"a": 1.0, "n": 1.0}
    out = alert_outcome([alert("n", 1)], days, labels={"a": 1, "n": 0})
    assert out["alert_precision"] == 0 and out["sensor_recall"] == 0 and "median_lead_hours" not in out
    assert set(alert_outcome([], days)) == {"alerts", "cleared", "sensors", "sensors_alerted", "sensor_days"}


def test_alertable_days_skip_the_warm_up():
    points = pd.DataFrame({"sensor_id": ["a"] * 4 + ["b"], "window_end": [0, DAY, 2 * DAY, 3 * DAY, 5 * DAY],
                           "warming_up": [True, False, False, False, False]})
    assert alertable_days(points) == {"a": 3.0, "b": 0.0}


def test_truth_onsets_read_iso_epoch_and_blank():
    frame = pd.DataFrame({"sensor_id": ["a", "b", "c"], "onset": ["2026-01-02T00:00:00Z", "1767312000000", ""]})
    assert truth_onsets(frame) == {"a": 1767312000000, "b": 1767312000000, "c": None}
    with pytest.raises(ValueError, match="sensor_id and onset"):
        truth_onsets(pd.DataFrame({"sensor": ["a"]}))
    with pytest.raises(ValueError, match="neither ISO-8601"):
        truth_onsets(pd.DataFrame({"sensor_id": ["a"], "onset": ["next tuesday"]}))


def normal_scores(n_sensors, days, seed=0):
    rng = np.random.default_rng(seed)
    per = int(days * 24)
    sensor = np.repeat([f"s{i}" for i in range(n_sensors)], per)
    end = np.tile(np.arange(per) * HOUR, n_sensors)
    return rng.gamma(2.0, 0.02, len(sensor)), sensor, end


def count_alert_blocks(scores, sensor, end, threshold, persist_points):
    """Episodes where the score stays over the threshold for ``persist_points`` hourly points."""
    n = 0
    for s in np.unique(sensor):
        over = scores[sensor == s] >= threshold
        run = 0
        for flag in over:
            run = run + 1 if flag else 0
            n += run == persist_points
    return n


def test_budget_threshold_meets_the_budget_on_far_more_data_than_it_was_fitted_on():
    alerts = AlertSettings(for_points=1, for_duration=timedelta(hours=2), budget=1.0)  # three hourly points
    fitted = budget_threshold(*normal_scores(100, 10), alerts, point_ms=HOUR, window_ms=240 * HOUR, bin_ms=HOUR)
    assert fitted.method == "alert_budget" and fitted.detail["sensor_days"] <= 1000
    assert expected_rate(fitted.value, fitted.detail) == pytest.approx(1.0, rel=1e-6)
    scores, sensor, end = normal_scores(1000, 30, seed=1)  # 30,000 sensor-days, unseen
    rate = 100 * count_alert_blocks(scores, sensor, end, fitted.value, 3) / 30_000
    assert 0.3 < rate < 3.0  # within a factor of about three of the budget of 1
    stricter = budget_threshold(*normal_scores(100, 10), alerts.model_copy(update={"budget": 0.1}), HOUR, 240 * HOUR,
                                HOUR)
    assert stricter.value > fitted.value


def test_too_little_held_out_time_gives_no_budget_threshold():
    assert budget_threshold(*normal_scores(2, 3), AlertSettings(), point_ms=HOUR, window_ms=240 * HOUR,
                            bin_ms=HOUR) is None
