import numpy as np
import pytest

from vigil.events.frame import SensorSeries
from vigil.features import CHANNEL_GROUPS, FleetStats, WindowSpec, bin_events, channel_names, featurize_window, channels_one
from vigil.buffer.bins import accumulate
from vigil.features.dataset import build_windows, fleet_stats, history_covering, window_end_indices
from vigil.features.normalizer import SensorBaseline
from vigil.features.window import FEATURIZER_VERSION, SPREAD_FLOOR

HOUR = 3_600_000
# Every channel group but cross, so each group's channel has a fixed place.
SPEC = WindowSpec(length_ms=10 * HOUR, steps=10, n_features=1, groups=("level", "fleet", "spread", "extreme", "count"))
STATS = FleetStats(mean=np.array([0.0]), std=np.array([1.0]), count_per_bin=2.0)
LEVEL, FLEET, SPREAD, EXTREME, COUNT = range(5)  # one feature: no cross channel
END = 10 * HOUR - 1  # in bin 9: the window is bins 0-9, [0, 10 h)


def noisy(n=600, features=1, seed=0):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.choice(np.arange(1, 10 * HOUR), n, replace=False)).astype(np.int64)
    return ts, rng.normal(0, 1, (n, features))


def test_shape_dtype_channel_names_and_empty_window():
    out = featurize_window(np.array([0]), np.array([[1.0]]), end_ms=100 * HOUR, spec=SPEC, stats=STATS)
    assert out.shape == (10, 5) and out.dtype == np.float32
    assert not out.any()  # the only event is outside the window
    two = WindowSpec(length_ms=HOUR, steps=4, n_features=2, groups=CHANNEL_GROUPS)
    assert channel_names(two, ["a", "b"]) == ["level:a", "level:b", "fleet:a", "fleet:b", "spread:a", "spread:b",
                                             "extreme:a", "extreme:b", "cross:a", "cross:b", "count"]
    assert two.channels == 11
    assert WindowSpec(length_ms=HOUR, steps=4, n_features=2).channels == 7  # the default: no fleet, no cross
    assert WindowSpec(length_ms=HOUR, steps=4, n_features=2, groups=("level", "count")).channels == 3


def test_events_land_in_their_bins_with_counts_and_carry_forward():
    end = END
    # Baseline = the first half of the bins from the first event: bins 0-4, values 1, 3, 3, 1.
    ts = np.array([0.5, 1.5, 1.6, 4.5, 9.5]) * HOUR
    x = np.array([[1.0], [3.0], [3.0], [1.0], [7.0]])
    out = featurize_window(ts.astype(np.int64), x, end, SPEC, STATS)
    mu, sd = 2.0, 1.0  # mean/std of the four baseline events (the floor adds a tenth of the window's spread)
    sd = np.sqrt(sd**2 + 0.01 * np.var([1, 3, 3, 1, 7]))
    level, spread, count = out[:, LEVEL], out[:, SPREAD], out[:, COUNT]
    assert level[0] == pytest.approx((1 - mu) / sd, rel=1e-5)
    assert level[1] == pytest.approx((3 - mu) / sd, rel=1e-5)
    assert level[2] == level[3] == level[1]  # empty bins carry the last mean forward
    assert level[9] == pytest.approx((7 - mu) / sd, rel=1e-5)
    assert out[9, FLEET] == pytest.approx(7.0)  # the fleet frame: (7 - 0) / 1
    assert list(count) == pytest.approx([0.5, 1.0, 0, 0, 0.5, 0, 0, 0, 0, 0.5])
    assert spread[1] == pytest.approx(np.log(SPREAD_FLOOR))  # two events of one value: no spread at all
    assert not np.delete(spread, 1).any()  # bins of one event have no spread to measure
    assert out[1, EXTREME] == pytest.approx((3 - mu) / sd, rel=1e-5) and out[2, EXTREME] == 0


def test_window_is_the_steps_bins_up_to_the_end_bin():
    ts = np.array([0, 5 * HOUR, 10 * HOUR], dtype=np.int64)
    out = featurize_window(ts, np.ones((3, 1)), 10 * HOUR, SPEC, STATS)
    assert out[:, COUNT].tolist() == pytest.approx([0, 0, 0, 0, 0.5, 0, 0, 0, 0, 1])  # the event at 0 is out
    # The last bin had only begun: its one event is measured against at least one expected.


def test_the_last_bin_counts_against_the_events_expected_by_the_window_end():
    stats = FleetStats(np.zeros(1), np.ones(1), count_per_bin=60.0)  # one event a minute
    ts = np.arange(0, 10 * HOUR, 60_000, dtype=np.int64)
    x = np.zeros((len(ts), 1))
    half = featurize_window(ts, x, 9 * HOUR + HOUR // 2 - 1, SPEC, stats)  # 30 of 60 minutes: 30 events
    whole = featurize_window(ts, x, 10 * HOUR - 1, SPEC, stats)
    assert half[-1, COUNT] == pytest.approx(1.0) and whole[-1, COUNT] == pytest.approx(1.0)
    assert half[:-1, COUNT] == pytest.approx(whole[:-1, COUNT])


@pytest.mark.parametrize("unit", [1e-3, 40.0, 1e4])
def test_own_frame_channels_do_not_depend_on_operating_point_or_units(unit):
    ts, x = noisy(features=2)
    spec = WindowSpec(length_ms=10 * HOUR, steps=10, n_features=2, groups=("level", "spread", "extreme", "cross"))
    stats = FleetStats(np.zeros(2), np.ones(2), 2.0)
    a = featurize_window(ts, x, END, spec, stats)
    b = featurize_window(ts, 500 * unit + unit * x, END, spec, stats)
    assert np.allclose(a, b, atol=1e-4)


def test_a_late_level_shift_stands_out_against_the_window_baseline():
    ts = np.arange(0, 10 * HOUR, HOUR // 6, dtype=np.int64)
    x = np.random.default_rng(1).normal(0, 1, (len(ts), 1))
    x[ts >= 8 * HOUR] += 5
    out = featurize_window(ts, x, END, SPEC, STATS)
    assert out[8:, LEVEL].min() > 3 and np.abs(out[:5, LEVEL]).max() < 1.5


def test_a_unit_away_from_the_healthy_fleet_stands_out_in_the_fleet_frame_only():
    ts, x = noisy()
    stats = FleetStats(mean=np.array([100.0]), std=np.array([2.0]), count_per_bin=60.0)
    healthy = featurize_window(ts, 100 + x, END, SPEC, stats)
    drifted = featurize_window(ts, 108 + x, END, SPEC, stats)  # 4 fleet std away all along
    assert np.abs(healthy[:, FLEET]).max() < 1
    assert drifted[:, FLEET].min() > 3
    assert np.allclose(healthy[:, LEVEL], drifted[:, LEVEL], atol=1e-4)  # it looks normal to itself


def test_a_short_spike_shows_in_the_extreme_channel_more_than_in_the_bin_mean():
    ts, x = noisy(seed=2)
    x[np.searchsorted(ts, 8 * HOUR)] += 12
    out = featurize_window(ts, x, END, SPEC, STATS)
    assert out[8, EXTREME] > 8 * abs(out[8, LEVEL]) and out[8, EXTREME] > 6
    assert out[:8, EXTREME].max() < 5


def test_a_stuck_sensor_departs_in_the_spread_channel_as_far_as_a_variance_burst():
    ts = np.arange(0, 10 * HOUR, HOUR // 12, dtype=np.int64)
    x = np.random.default_rng(4).normal(0, 1, (len(ts), 1))
    stuck, burst = x.copy(), x.copy()
    stuck[ts >= 8 * HOUR] = stuck[np.searchsorted(ts, 8 * HOUR)]
    burst[ts >= 8 * HOUR] *= 30
    normal = featurize_window(ts, x, END, SPEC, STATS)[:, SPREAD]
    flat = featurize_window(ts, stuck, END, SPEC, STATS)[8:, SPREAD]
    loud = featurize_window(ts, burst, END, SPEC, STATS)[8:, SPREAD]
    typical = normal[:8].mean()
    assert np.abs(normal - typical).max() < 0.7
    assert flat == pytest.approx(np.log(SPREAD_FLOOR), abs=1e-6)  # no spread at all
    assert (typical - flat).min() > 2.5 and (loud - typical).min() > 2.0


def test_features_that_stop_moving_together_raise_the_cross_channel():
    rng = np.random.default_rng(3)
    ts, _ = noisy(n=1200)
    shared = rng.normal(0, 1, len(ts))
    x = np.stack([shared + 0.2 * rng.normal(0, 1, len(ts)), shared + 0.2 * rng.normal(0, 1, len(ts))], axis=1)
    late = ts >= 6 * HOUR
    x[late] = rng.normal(0, 1, (int(late.sum()), 2))  # same spread, no correlation
    spec = WindowSpec(length_ms=10 * HOUR, steps=10, n_features=2, groups=CHANNEL_GROUPS)
    out = featurize_window(ts, x, END, spec, FleetStats(np.zeros(2), np.ones(2), 120.0))
    cross = out[:, 8:10]
    assert cross[:5].max() < 1.5 and cross[6:].min() > 3
    assert np.abs(out[6:, 0:2]).max() < 1.0  # the level barely moves


def test_sensor_baseline_mode_uses_the_saved_statistics():
    spec = WindowSpec(length_ms=10 * HOUR, steps=10, n_features=1, baseline="sensor")
    ts = np.array([HOUR, 2 * HOUR], dtype=np.int64)
    x = np.array([[12.0], [12.0]])
    out = featurize_window(ts, x, END, spec, STATS, SensorBaseline(np.array([10.0]), np.array([[4.0]])))
    assert out[1, LEVEL] == pytest.approx(1.0)  # (12 - 10) / 2, in the bin of [1 h, 2 h)


def test_a_sensor_the_model_never_saw_is_measured_against_the_healthy_fleet():
    spec = WindowSpec(length_ms=10 * HOUR, steps=10, n_features=1, baseline="sensor")
    stats = FleetStats(mean=np.array([10.0]), std=np.array([2.0]), count_per_bin=2.0)
    ts = np.array([HOUR, 2 * HOUR], dtype=np.int64)
    out = featurize_window(ts, np.array([[14.0], [14.0]]), END, spec, stats, baseline=None)
    assert out[1, LEVEL] == pytest.approx(2.0)  # (14 - 10) / 2: the fleet's statistics, no saved baseline


def test_values_are_clipped():
    ts = np.array([HOUR, 2 * HOUR, 9 * HOUR], dtype=np.int64)
    out = featurize_window(ts, np.array([[0.0], [0.1], [1e9]]), END, SPEC, STATS)
    assert out.max() == SPEC.clip and np.isfinite(out).all()


def test_channels_do_not_depend_on_how_the_events_were_batched_into_bins():
    """Coarse bins merged from fine ones (a buffer finer than the model) give the same tensor."""
    ts, x = noisy(features=2, seed=4)
    x = 1000 + x * [5.0, 0.01]
    spec = WindowSpec(length_ms=10 * HOUR, steps=10, n_features=2)
    stats = FleetStats(np.array([1000.0, 1000.0]), np.array([5.0, 0.01]), 60.0)
    direct = channels_one(bin_events(ts, x, END, 10 * HOUR, 10), spec, stats)
    fine, _ = accumulate(ts, x, HOUR // 6)
    merged = channels_one(fine.window(9, 10, HOUR), spec, stats)
    assert np.allclose(direct, merged, atol=1e-4)


def test_window_end_indices():
    assert list(window_end_indices(10, None)) == [9]
    assert list(window_end_indices(10, 3)) == [0, 3, 6, 9]
    assert list(window_end_indices(0, 3)) == []


def test_build_windows_counts_labels_min_events_and_history():
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
    covered = build_windows([s1], SPEC, STATS, every=1, min_history_ms=9 * HOUR)
    assert list(covered.end_ms // HOUR) == list(range(9, 20))  # only windows with 9 h of history


def test_training_history_follows_the_window_or_a_shorter_data_span():
    long = [SensorSeries("a", np.arange(100, dtype=np.int64) * HOUR, np.ones((100, 1)), np.zeros(100))]
    short = [SensorSeries("a", np.arange(4, dtype=np.int64) * HOUR, np.ones((4, 1)), np.zeros(4))]
    assert history_covering(long, 10 * HOUR, 0.9) == 9 * HOUR
    assert history_covering(short, 10 * HOUR, 0.9) == int(0.9 * 3 * HOUR)


def test_fleet_stats_fit_and_round_trip():
    rng = np.random.default_rng(0)
    series = [SensorSeries(f"s{i}", np.arange(100, dtype=np.int64) * 60_000,
                           rng.normal([5, 1e4], [2, 1], (100, 2)) + i, np.zeros(100)) for i in range(5)]
    stats = fleet_stats(series, WindowSpec(length_ms=HOUR, steps=6, n_features=2), per_sensor=True)
    pooled = np.concatenate([s.values for s in series])
    assert stats.mean == pytest.approx(pooled.mean(axis=0)) and stats.std == pytest.approx(pooled.std(axis=0))
    assert stats.count_per_bin == pytest.approx(10.0, rel=0.05)
    back = FleetStats.from_dict(stats.to_dict())
    assert np.allclose(back.std, stats.std) and np.allclose(back.mean, stats.mean)
    assert np.allclose(back.baseline_for("s3").cov, stats.baseline_for("s3").cov)
    with pytest.raises(ValueError, match="older Vigil"):
        FleetStats.from_dict({"scale_floor": [0.1], "count_per_bin": 1.0})


@pytest.mark.parametrize("kwargs", [{"length_ms": 0, "steps": 1, "n_features": 1},
                                    {"length_ms": 1, "steps": 1, "n_features": 1, "baseline": "fleet"},
                                    {"length_ms": 1, "steps": 1, "n_features": 1, "groups": ("level", "colour")},
                                    {"length_ms": 1, "steps": 1, "n_features": 1, "version": 1}])
def test_bad_window_specs(kwargs):
    with pytest.raises(ValueError):
        WindowSpec(**kwargs)


@pytest.mark.parametrize("saved", [{}, {"version": 3}])
def test_a_model_of_an_older_featurisation_is_refused_by_name(saved):
    with pytest.raises(ValueError, match="older Vigil"):
        WindowSpec.from_dict({"length_ms": 1, "steps": 1, "n_features": 1, **saved})


@pytest.mark.parametrize("version", [4, 5])
def test_models_of_featurisations_4_and_5_are_still_read(version):
    # Version 4 feeds the same tensor without heads (its autoencoder scores alone); version 5 has
    # the heads without the pooled joint (tests/unit/test_heads.py scores one).
    assert WindowSpec.from_dict({"length_ms": 1, "steps": 1, "n_features": 1, "version": version}).version == version
    assert FEATURIZER_VERSION == 6


def test_windows_come_in_bounded_batches_equal_to_all_at_once():
    from vigil.features.dataset import iter_windows

    series = [SensorSeries(f"s{i}", np.arange(30, dtype=np.int64) * HOUR, np.random.default_rng(i).normal(0, 1, (30, 1)),
                           np.zeros(30)) for i in range(4)]
    batches = list(iter_windows(series, SPEC, STATS, every=1, batch=7))
    assert all(len(b) < 2 * 7 for b in batches) and len(batches) > 4
    whole = build_windows(series, SPEC, STATS, every=1)
    assert np.array_equal(np.concatenate([b.x for b in batches]), whole.x)
    assert list(np.concatenate([b.sensor_id for b in batches])) == list(whole.sensor_id)
