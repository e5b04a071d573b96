import numpy as np

from vigil.model.explain import EVENT_RATE, explain

HOUR = 3_600_000


def test_shares_name_the_feature_whose_channels_carry_the_error_and_the_span_its_bins():
    # Two features, channels [level f0, level f1, spread f0, spread f1, count].
    owners = np.array([0, 1, 0, 1, -1])
    c = np.full((2, 10, 5), 0.1, np.float32)
    c[0, 6:, 1] = 5.0  # feature "b" departs from bin 6 on
    c[1, 3, 4] = 9.0  # one bin with an odd number of events
    out = explain(c, owners, ["a", "b"], np.array([10 * HOUR, 20 * HOUR]), 10 * HOUR)
    first, second = out
    assert first.features[0].feature == "b" and first.features[0].share > 0.8
    assert (first.span_start, first.span_end) == (6 * HOUR, 10 * HOUR)
    assert second.features[0].feature == EVENT_RATE
    assert second.span_start <= 10 * HOUR + 3 * HOUR < second.span_end <= 10 * HOUR + 5 * HOUR
    assert sum(f.share for f in first.features) <= 1.0 + 1e-6 and len(first.features) == 3


def test_a_flat_window_still_gets_a_valid_span():
    out = explain(np.ones((1, 4, 2), np.float32), np.array([0, -1]), ["a"], np.array([4 * HOUR]), 4 * HOUR)
    assert 0 <= out[0].span_start < out[0].span_end <= 4 * HOUR


def test_normal_statistics_do_not_make_the_start_of_a_full_window_look_anomalous():
    from vigil.model.training import input_statistics

    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, (400, 24, 3)).astype(np.float32)
    train[:360, :6] = 0.0  # most training windows had a short history: empty first bins
    mean, std = input_statistics(train)
    assert mean.shape == std.shape == (3,)
    full = rng.normal(0, 1, (50, 24, 3))
    departure = ((full - mean) / std) ** 2
    assert departure[:, :6].mean() < 2 * departure[:, 6:].mean()


def _one_window(contributions: np.ndarray, owners: np.ndarray, n_features: int, end_ms: int, length_ms: int):
    """One window read the plain way: (top features by share, the span around the smoothed peak)."""
    steps = contributions.shape[0]
    per_feature = np.array([contributions[:, owners == (k if k < n_features else -1)].sum()
                            for k in range(n_features + 1)])
    smooth = np.convolve(contributions.sum(axis=1), np.ones(3) / 3, mode="same")
    peak = int(np.argmax(smooth))
    lo = hi = peak
    while lo > 0 and smooth[lo - 1] >= 0.5 * smooth[peak]:
        lo -= 1
    while hi < steps - 1 and smooth[hi + 1] >= 0.5 * smooth[peak]:
        hi += 1
    bin_ms = length_ms // steps
    return list(np.argsort(-per_feature, kind="stable")[:3]), (end_ms - length_ms + lo * bin_ms,
                                                               end_ms - length_ms + (hi + 1) * bin_ms)


def test_a_batch_explained_at_once_reads_as_each_window_on_its_own():
    rng = np.random.default_rng(7)
    owners = np.array([0, 1, 2, 0, 1, 2, -1])
    c = (rng.random((64, 24, 7)) ** 6).astype(np.float32)
    c[::3, 8:15, 4] += 2.0  # a block on feature "b" in every third window
    c[1::5, 20, 6] += 9.0  # one odd bin of events
    ends = (30 + np.arange(64)) * HOUR
    out = explain(c, owners, ["a", "b", "c"], ends, 24 * HOUR)
    names = ["a", "b", "c", EVENT_RATE]
    for i, got in enumerate(out):
        order, span = _one_window(c[i].astype(np.float64), owners, 3, int(ends[i]), 24 * HOUR)
        assert [f.feature for f in got.features] == [names[j] for j in order]
        assert (got.span_start, got.span_end) == span
