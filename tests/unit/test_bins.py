"""Per-bin accumulators (vigil/buffer/bins.py): the offline arithmetic the Lua apply mirrors."""

import numpy as np
import pytest

from vigil.buffer.bins import BinStats, accumulate, bin_events, bin_width, full_matrix, merge_records

HOUR = 3_600_000


def events(n=3000, features=2, seed=0, span=10 * HOUR):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, span, n)).astype(np.int64)
    x = (1000 + rng.normal(0, 1, (n, features)) * np.linspace(5, 0.01, features)).astype(np.float32)
    return ts, x


def test_each_bin_holds_its_events_count_mean_covariance_min_and_max():
    ts, x = events()
    bins, _ = accumulate(ts, x, HOUR)
    assert list(bins.index) == sorted(set(ts // HOUR)) and bins.n_events == len(ts)
    stats = BinStats.of(0, HOUR, bins.records)
    for row, b in enumerate(bins.index):
        mine = x[ts // HOUR == b].astype(np.float64)
        assert stats.count[row] == len(mine)
        assert stats.min[row] == pytest.approx(mine.min(axis=0), abs=0) and stats.max[row] == pytest.approx(mine.max(axis=0), abs=0)
        assert stats.mean[row] == pytest.approx(mine.mean(axis=0), rel=1e-6)
        assert full_matrix(stats.co[row], 2) / len(mine) == pytest.approx(np.cov(mine.T, bias=True), rel=1e-4, abs=1e-9)


def test_a_snapshot_is_the_bin_as_it_stood_after_that_event_bit_for_bit():
    ts, x = events(500)
    at = np.array([0, 17, 250, 499])
    _, snaps = accumulate(ts, x, HOUR, snapshots=at)
    for i, snap in zip(at, snaps):
        prefix, _ = accumulate(ts[: i + 1], x[: i + 1], HOUR)
        assert prefix.records[-1].tobytes() == snap.tobytes()


def test_window_ends_at_the_bin_of_its_end_and_holds_steps_bins():
    ts = np.array([0, HOUR - 1, HOUR, 5 * HOUR, 10 * HOUR], dtype=np.int64)
    x = np.arange(5, dtype=np.float32)[:, None]
    w = bin_events(ts, x, 10 * HOUR, 10 * HOUR, 10)  # bins 1..10: the first two events are out
    assert w.first_bin == 1 and w.steps == 10 and list(w.count) == [1, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    early = bin_events(ts, x, 10 * HOUR - 1, 10 * HOUR, 10)  # bins 0..9: the last event is in the future
    assert list(early.count) == [2, 1, 0, 0, 0, 1, 0, 0, 0, 0] and early.first_event_bin_ms() == 0


def test_coarser_bins_merge_finer_ones():
    ts, x = events(2000, seed=3)
    fine, _ = accumulate(ts, x, HOUR // 4)
    coarse, _ = accumulate(ts, x, HOUR)
    index, merged = merge_records(fine.index // 4, fine.records)
    assert list(index) == list(coarse.index)
    a, b = BinStats.of(0, HOUR, merged), BinStats.of(0, HOUR, coarse.records)
    assert np.array_equal(a.count, b.count) and np.array_equal(a.min, b.min) and np.array_equal(a.max, b.max)
    assert np.allclose(a.mean, b.mean, rtol=1e-6) and np.allclose(a.co, b.co, rtol=1e-3, atol=1e-6)
    window = fine.window(9, 10, HOUR)
    assert np.array_equal(window.count, coarse.window(9, 10).count)


def test_merged_bins_give_the_window_moments():
    ts, x = events(1000, seed=5)
    w = bin_events(ts, x, 10 * HOUR - 1, 10 * HOUR, 10)
    n, mean, cov = w.merged(slice(None))
    assert n == len(ts) and np.allclose(mean, x.mean(axis=0, dtype=np.float64))
    assert np.allclose(cov, np.cov(x.T.astype(np.float64), bias=True), rtol=1e-4)


def test_bins_are_whole_milliseconds():
    assert bin_width(10 * HOUR, 10) == HOUR and bin_width(1000, 3) == 333
    with pytest.raises(ValueError, match="at least a millisecond"):
        bin_width(2, 3)
