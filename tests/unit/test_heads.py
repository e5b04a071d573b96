"""The detection heads (vigil.features.heads), their calibration and the detector's explanations."""

import numpy as np
import pytest

from vigil.buffer.bins import BinStats, bin_events
from vigil.features import FleetStats, WindowSpec
from vigil.features.heads import HEADS, HeadStats, head_statistics, horizons
from vigil.model.detector import (DETECTOR_HEADS, JOINT, SCORE_HEADS, TAIL_FRACTION, Calibrator, Detector,
                                  FleetReference)
from vigil.model.explain import explain_scored, head_values
from vigil.model.predictor import Scored

DAY = 86_400_000
LENGTH, STEPS = 10 * DAY, 240
SPEC = WindowSpec(LENGTH, STEPS, 2)


def correlated(seed: int, days: float = 10, every_ms: int = 600_000):
    """Two features following one shared AR(1) state with a daily cycle, an event every 10 minutes."""
    rng = np.random.default_rng(seed)
    ts = np.arange(0, int(days * DAY), every_ms, dtype=np.int64)
    shared = np.zeros(len(ts))
    noise = rng.normal(0, 0.4, len(ts))
    for i in range(1, len(ts)):
        shared[i] = 0.8 * shared[i - 1] + noise[i]
    shared += np.sin(2 * np.pi * ts / DAY)
    x = np.column_stack([0.8 * shared + 0.6 * rng.normal(0, 1, len(ts)),
                         0.8 * shared + 0.6 * rng.normal(0, 1, len(ts))]) * [2.0, 50.0] + [10.0, 1000.0]
    return ts, x


def window(ts, x):
    return bin_events(ts, x, int(ts[-1]), LENGTH, STEPS)


def heads_of(ts, x) -> HeadStats:
    return head_statistics(BinStats.stack([window(ts, x)]))


def raw(stats: HeadStats, head: str) -> float:
    return float(stats.raw[0, HEADS.index(head)])


@pytest.fixture(scope="module")
def normal():
    return heads_of(*correlated(0))


def test_horizons_follow_the_window_and_are_at_least_a_bin():
    assert horizons(240) == (2, 12, 48)
    assert horizons(10) == (1, 2)
    assert horizons(1) == (1,)


def test_a_level_shift_fires_the_shift_head_on_the_shifted_feature(normal):
    ts, x = correlated(0)
    x[ts > 9.5 * DAY, 1] += 3 * 50.0  # three of the feature's own spreads, over the last 12 hours
    found = heads_of(ts, x)
    k = HEADS.index("shift")
    assert raw(found, "shift") > 3 * raw(normal, "shift") and raw(found, "shift") > 8
    assert found.feature[0, k] == 1
    assert found.after[0, k] > found.before[0, k] + 100  # in the feature's own units


def test_a_stuck_sensor_fires_the_spread_head_downwards(normal):
    ts, x = correlated(0)
    x[ts > 9 * DAY] = x[ts > 9 * DAY][0]
    found = heads_of(ts, x)
    k = HEADS.index("spread")
    assert raw(found, "spread") > 3 * raw(normal, "spread")
    assert found.after[0, k] < found.before[0, k] / 100


def test_spikes_fire_the_extreme_head(normal):
    ts, x = correlated(0)
    hit = (ts > 9 * DAY) & (np.arange(len(ts)) % 10 == 0)
    x[hit, 0] += 8 * 2.0
    assert raw(heads_of(ts, x), "extreme") > 3 * max(raw(normal, "extreme"), 1.0)


def test_features_that_stop_moving_together_fire_the_corr_head_on_their_pair(normal):
    ts, x = correlated(0)
    after = ts > 8 * DAY
    rng = np.random.default_rng(5)
    x[after] = x[~after].mean(axis=0) + x[~after].std(axis=0) * rng.normal(0, 1, (after.sum(), 2))
    found = heads_of(ts, x)
    k = HEADS.index("corr")
    assert raw(found, "corr") > 3 * raw(normal, "corr")
    assert found.feature[0, k] == 1  # the packed position of the pair (0, 1)
    assert found.before[0, k] > 0.5 > abs(found.after[0, k])


def test_a_young_window_has_no_heads_until_its_history_holds_two_horizons():
    ts, x = correlated(0, days=0.1)  # 2.4 hours: one horizon of 2 bins and no more
    found = heads_of(ts, x)
    assert np.all(found.raw == 0.0) and np.all(found.horizon == 0)


def test_a_batch_gives_each_window_what_it_gets_alone():
    windows = [window(*correlated(seed, days=d)) for seed, d in ((1, 10), (2, 3), (3, 0.5))]
    together = head_statistics(BinStats.stack(windows))
    for i, w in enumerate(windows):
        alone = head_statistics(BinStats.stack([w]))
        assert np.allclose(together.raw[i], alone.raw[0]) and np.array_equal(together.feature[i], alone.feature[0])


def test_head_stats_travel_as_one_array():
    stats = heads_of(*correlated(4))
    back = HeadStats.from_array(stats.as_array())
    assert stats.as_array().shape == (1, HeadStats.width(2))
    for f in ("raw", "feature", "horizon", "before", "after", "recent_mean"):
        assert np.allclose(getattr(back, f), getattr(stats, f))


def test_the_calibrator_is_monotone_and_keeps_rising_past_every_normal_value():
    normal = np.random.default_rng(0).exponential(1.0, 4000)
    c = Calibrator.fit(normal)
    grid = np.linspace(0, 30, 301)
    z = c(grid)
    assert np.all(np.diff(z) >= -1e-12) and z[0] == pytest.approx(0.0, abs=1e-9)
    assert c(np.array([normal.max() * 2]))[0] > c(np.array([normal.max()]))[0] + 1
    assert np.mean(c(normal) >= 3) == pytest.approx(0.0027, abs=0.003)  # z 3 is about 1 in 370 normal values
    back = Calibrator.from_dict(c.to_dict())
    assert np.allclose(back(grid), z)


def test_the_calibrated_value_is_the_normal_quantile_of_half_its_tail_probability():
    from scipy.stats import norm

    normal = np.random.default_rng(1).exponential(1.0, 4000)
    c = Calibrator.fit(normal)
    raw = np.concatenate([[0.0, -1.0, np.inf, np.nan], np.linspace(0, 40, 401)])
    z = c(raw)
    # the tail probability Calibrator gives each value, recovered from its own body and tail
    body = np.maximum(1.0 - np.interp(raw, c.x, c.p, left=0.0), TAIL_FRACTION)
    tail = np.minimum(TAIL_FRACTION * np.exp(-np.maximum(raw - c.tail_base, 0.0) / c.tail_scale), TAIL_FRACTION)
    sf = np.clip(np.where(np.isfinite(raw), np.where(raw > c.tail_base, tail, body), 1.0), 1e-300, 1.0)
    assert z.tobytes() == norm.isf(sf / 2).tobytes()  # the same bits: 0.0 at the median, never -0.0
    assert not np.signbit(z[:2]).any()


def test_the_detector_scores_the_largest_calibrated_value_and_refuses_other_heads():
    rng = np.random.default_rng(0)
    normal = rng.exponential(1.0, (2000, len(DETECTOR_HEADS)))
    detector = Detector.fit(normal, FleetReference(np.zeros(2), np.eye(2)))
    calibrated = detector.calibrate(normal[:5])
    assert calibrated.shape == (5, len(SCORE_HEADS))
    assert np.allclose(Detector.combine(calibrated), calibrated.max(axis=1))
    saved = detector.to_dict()
    assert np.allclose(Detector.from_dict(saved).calibrate(normal[:5]), calibrated)
    with pytest.raises(ValueError, match="retrain"):
        Detector.from_dict({**saved, "heads": ["shift"]})


def test_joint_pools_heads_that_each_move_a_little():
    # Independent heads on normal windows: one head at z 3 is common enough (the max of 8), while
    # four heads at z 2.5 together are not, so joint scores that window above any one head.
    rng = np.random.default_rng(1)
    normal = rng.exponential(1.0, (20_000, len(DETECTOR_HEADS)))
    detector = Detector.fit(normal, FleetReference(np.zeros(2), np.eye(2)))
    one = Calibrator.fit(normal[:, 0])
    grid = np.linspace(0, 30, 30_001)

    def raw_at(z: float) -> float:  # the raw value calibrated to about z
        return float(grid[np.searchsorted(one(grid), z)])
    raw = np.zeros((2, len(DETECTOR_HEADS)))
    raw[0, :4] = raw_at(2.5)  # four heads a little up
    raw[1, 0] = raw_at(3.0)  # one head at about 3
    calibrated = detector.calibrate(raw)
    j = SCORE_HEADS.index(JOINT)
    assert calibrated[0, j] > calibrated[0, :j].max() + 0.5
    assert calibrated[1, j] <= calibrated[1, :j].max()
    assert Detector.combine(calibrated)[0] > Detector.combine(calibrated)[1]


def test_a_featurisation_5_detector_is_scored_by_its_largest_head():
    normal = np.random.default_rng(2).exponential(1.0, (2000, len(DETECTOR_HEADS)))
    saved = Detector.fit(normal, FleetReference(np.zeros(2), np.eye(2))).to_dict()
    old = {**saved, "heads": list(DETECTOR_HEADS),
           "calibrators": {k: v for k, v in saved["calibrators"].items() if k != JOINT}}
    calibrated = Detector.from_dict(old).calibrate(normal[:5])
    assert np.all(calibrated[:, SCORE_HEADS.index(JOINT)] == 0)
    assert np.allclose(Detector.combine(calibrated), calibrated[:, :len(DETECTOR_HEADS)].max(axis=1))


def test_the_fleet_head_measures_distance_from_healthy_sensors():
    stats = FleetStats(np.array([10.0, 1000.0]), np.array([2.0, 50.0]), 6.0)
    healthy = np.random.default_rng(0).normal([10.0, 1000.0], [2.0, 50.0], (500, 2))
    fleet = FleetReference.fit(healthy, stats)
    near, far = fleet.distance(np.array([[10.0, 1000.0], [20.0, 1000.0]]), stats)
    assert far > 10 * max(near, 0.1)


def test_explanations_name_the_head_and_say_what_changed():
    ts, x = correlated(0)
    after = ts > 8 * DAY
    rng = np.random.default_rng(5)
    x[after] = x[~after].mean(axis=0) + x[~after].std(axis=0) * rng.normal(0, 1, (after.sum(), 2))
    stats = heads_of(ts, x)
    calibrated = np.zeros((1, len(SCORE_HEADS)))
    calibrated[0, DETECTOR_HEADS.index("corr")] = 5.0
    calibrated[0, SCORE_HEADS.index(JOINT)] = 6.0  # joint pooled it higher: the corr head still explains
    scored = Scored(np.array([5.0]), None, calibrated)
    fleet = FleetStats(np.array([10.0, 1000.0]), np.array([2.0, 50.0]), 6.0)
    (why,) = explain_scored(scored, stats, SPEC, fleet, ["feature_1", "feature_2"], np.array([ts[-1]]))
    assert why.head == "corr"
    assert why.text.startswith("feature_2 stopped following feature_1: correlation 0.")
    assert "over the last 1d12h" in why.text
    assert {f.feature for f in why.features} == {"feature_1", "feature_2"}
    assert head_values(scored)[0]["corr"] == 5.0
