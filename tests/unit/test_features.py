import numpy as np
import pytest

from vigil.events.frame import SensorSeries
from vigil.features import FleetStats, WindowSpec, featurize_window
from vigil.features.dataset import build_windows, window_end_indices
from vigil.features.normalizer import SensorBaseline

HOUR = 3_600_000
SPEC = WindowSpec(length_ms=10 * HOUR, steps=10, n_features=1)
STATS = FleetStats(scale_floor=np.array([1e-6]), count_per_bin=2.0)


def test_shape_dtype_and_empty_window():
    out = featurize_window(np.array([0]), np.array([[1.0]]), end_ms=100 * HOUR, spec=SPEC, stats=STATS)
    assert out.shape == (10, 3) and out.dtype == np.float32
    assert not out.any()  # the only event is outside the window


def test_events_land_in_their_bins_with_counts_and_carry_forward():
    end = 10 * HOUR
    # Baseline = first half of the observed span: events in bins 0-4 with values 1 and 3.
    ts = np.array([0.5, 1.5, 1.6, 4.5, 9.5]) * HOUR
    x = np.array([[1.0], [3.0], [3.0], [1.0], [7.0]])
    out = featurize_window(ts.astype(np.int64), x, end, SPEC, STATS)
    mu, sd = 2.0, 1.0  # mean/std of the four baseline events
    means, spread, count = out[:, 0], out[:, 1], out[:, 2]
    assert means[0] == pytest.approx((1 - mu) / sd)
    assert means[1] == pytest.approx((3 - mu) / sd)
    assert means[2] == means[3] == means[1]  # empty bins carry the last mean forward
    assert means[9] == pytest.approx((7 - mu) / sd)
    assert list(count) == pytest.approx([0.5, 1.0, 0, 0, 0.5, 0, 0, 0, 0, 0.5])
    assert not spread.any()  # one distinct value per bin


def test_window_is_half_open_start_excluded_end_included():
    ts = np.array([0, 5 * HOUR, 10 * HOUR], dtype=np.int64)
    out = featurize_window(ts, np.ones((3, 1)), 10 * HOUR, SPEC, STATS)
    assert out[:, 2].sum() * STATS.count_per_bin == pytest.approx(2)  # the event at the start is out
    assert out[9, 2] > 0  # the event exactly at the end is in the last bin


def test_operating_points_do_not_change_the_features():
    rng = np.random.default_rng(0)
    ts = np.sort(rng.integers(0, 10 * HOUR, 200))
    x = rng.normal(0, 1, (200, 1))
    a = featurize_window(ts, x, 10 * HOUR, SPEC, STATS)
    b = featurize_window(ts, 500 + 40 * x, 10 * HOUR, SPEC, STATS)
    assert np.allclose(a[:, :2], b[:, :2], atol=1e-4)


def test_a_late_level_shift_stands_out_against_the_window_baseline():
    ts = np.arange(0, 10 * HOUR, HOUR // 6, dtype=np.int64)
    x = np.random.default_rng(1).normal(0, 1, (len(ts), 1))
    x[ts >= 8 * HOUR] += 5
    out = featurize_window(ts, x, 10 * HOUR, SPEC, STATS)
    assert out[8:, 0].min() > 3 and np.abs(out[:5, 0]).max() < 1.5


def test_sensor_baseline_mode_uses_the_saved_statistics():
    spec = WindowSpec(length_ms=10 * HOUR, steps=10, n_features=1, baseline="sensor")
    ts = np.array([HOUR, 2 * HOUR], dtype=np.int64)
    x = np.array([[12.0], [12.0]])
    out = featurize_window(ts, x, 10 * HOUR, spec, STATS, SensorBaseline(np.array([10.0]), np.array([2.0])))
    assert out[0, 0] == pytest.approx(1.0)  # (12 - 10) / 2


def test_values_are_clipped():
    ts = np.array([HOUR, 2 * HOUR, 9 * HOUR], dtype=np.int64)
    out = featurize_window(ts, np.array([[0.0], [0.1], [1e9]]), 10 * HOUR, SPEC, STATS)
    assert out.max() == SPEC.clip


def test_window_end_indices():
    assert list(window_end_indices(10, None)) == [9]
    assert list(window_end_indices(10, 3)) == [0, 3, 6, 9]
    assert list(window_end_indices(0, 3)) == []


def test_build_windows_counts_labels_and_min_events():
    ts = np.arange(20, dtype=np.int64) * HOUR
    s1 = SensorSeries("a", ts, np.arange(20.0)[:, None], np.r_[np.zeros(15), np.ones(5)])
    s2 = SensorSeries("b", ts[:3], np.ones((3, 1)), np.full(3, np.nan))
    w = build_windows([s1, s2], SPEC, STATS, every=5, min_events=4)
    assert list(w.sensor_id) == ["a"] * 4  # "b" never reaches 4 events
    assert list(w.end_ms // HOUR) == [4, 9, 14, 19]
    assert list(w.n_events) == [5, 10, 10, 10]  # 10-hour windows hold at most 10 hourly events
    assert list(w.label) == [0, 0, 0, 1]
    last = build_windows([s1, s2], SPEC, STATS, every=None)
    assert list(last.sensor_id) == ["a", "b"] and np.isnan(last.label[1])


def test_fleet_stats_fit_and_round_trip():
    rng = np.random.default_rng(0)
    series = [(f"s{i}", np.arange(100, dtype=np.int64) * 60_000, rng.normal(5, 2, (100, 2))) for i in range(5)]
    stats = FleetStats.fit(series, length_ms=HOUR, steps=6, per_sensor=True)
    assert stats.scale_floor == pytest.approx([0.2, 0.2], rel=0.2)
    assert stats.count_per_bin == pytest.approx(10.0, rel=0.05)
    back = FleetStats.from_dict(stats.to_dict())
    assert np.allclose(back.scale_floor, stats.scale_floor)
    assert np.allclose(back.baseline_for("s3").mean, stats.baseline_for("s3").mean)


@pytest.mark.parametrize("kwargs", [{"length_ms": 0, "steps": 1, "n_features": 1},
                                    {"length_ms": 1, "steps": 1, "n_features": 1, "baseline": "fleet"}])
def test_bad_window_specs(kwargs):
    with pytest.raises(ValueError):
        WindowSpec(**kwargs)
