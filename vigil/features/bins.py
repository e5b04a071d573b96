"""``BinStats``: a window's events summarised per time bin by statistics that merge as events arrive.

Every channel the model sees is computed from these alone (:mod:`vigil.features.window`), so a
buffer that keeps per-bin accumulators instead of raw events (merged event by event, like Flink's
``AggregateFunction``) produces the very same tensor: per bin the event count, the sum, the
cross-product matrix (squares on its diagonal), the minimum and the maximum of each feature.

Sums are kept relative to an ``origin`` (one value per feature) so that sums of squares of large
readings (a pressure of 9,046 that varies by 5) do not cancel in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BinStats:
    start_ms: int  # the window is (start_ms, start_ms + steps * bin_ms]
    bin_ms: float
    origin: np.ndarray  # [F]: sums are of (x - origin)
    count: np.ndarray  # [S]
    sum: np.ndarray  # [S, F]
    cross: np.ndarray  # [S, F, F] sum of (x - origin)(x - origin)^T
    min: np.ndarray  # [S, F], +inf in empty bins
    max: np.ndarray  # [S, F], -inf in empty bins

    @property
    def steps(self) -> int:
        return len(self.count)

    @classmethod
    def empty(cls, steps: int, n_features: int, start_ms: int, bin_ms: float) -> "BinStats":
        f = n_features
        return cls(start_ms, bin_ms, np.zeros(f), np.zeros(steps), np.zeros((steps, f)), np.zeros((steps, f, f)),
                   np.full((steps, f), np.inf), np.full((steps, f), -np.inf))

    def combine(self, other: "BinStats") -> "BinStats":
        """The statistics of both sets of events on the same grid, as a per-bin accumulator merges
        events arriving later (sums are moved to this one's origin first)."""
        if other.start_ms != self.start_ms or other.steps != self.steps or other.bin_ms != self.bin_ms:
            raise ValueError("bin statistics of different grids cannot be combined")
        d = other.origin - self.origin
        n = other.count[:, None]
        moved_sum = other.sum + n * d
        moved_cross = (other.cross + other.sum[:, :, None] * d[None, None, :] + d[None, :, None] * other.sum[:, None, :]
                       + n[:, :, None] * np.outer(d, d)[None])
        return BinStats(self.start_ms, self.bin_ms, self.origin, self.count + other.count, self.sum + moved_sum,
                        self.cross + moved_cross, np.minimum(self.min, other.min), np.maximum(self.max, other.max))

    def merged(self, bins: slice | np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Count, mean and covariance (population) of the events in ``bins`` together."""
        n = float(self.count[bins].sum())
        if n == 0:
            f = len(self.origin)
            return 0.0, self.origin.copy(), np.zeros((f, f))
        s = self.sum[bins].sum(axis=0) / n
        c = self.cross[bins].sum(axis=0) / n - np.outer(s, s)
        return n, s + self.origin, c


def bin_events(ts_ms: np.ndarray, values: np.ndarray, end_ms: int, length_ms: int, steps: int) -> BinStats:
    """The per-bin statistics of the events in ``(end_ms - length_ms, end_ms]`` (``ts_ms`` sorted)."""
    values = np.asarray(values, dtype=np.float64)
    start_ms = end_ms - length_ms
    out = BinStats.empty(steps, values.shape[1], start_ms, length_ms / steps)
    lo, hi = np.searchsorted(ts_ms, [start_ms, end_ms], side="right")
    if hi <= lo:
        return out
    t = ts_ms[lo:hi]
    origin = values[lo].copy()
    x = values[lo:hi] - origin
    # Bin of (start, end]: an event exactly at the end falls in the last bin.
    idx = np.minimum((t - start_ms - 1) * steps // length_ms, steps - 1).astype(np.intp)
    # Events are time-sorted, so each non-empty bin is one run of rows: reduce the runs.
    first = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    at = idx[first]
    out.count[at] = np.diff(np.r_[first, len(idx)])
    out.sum[at] = np.add.reduceat(x, first, axis=0)
    out.cross[at] = np.add.reduceat(x[:, :, None] * x[:, None, :], first, axis=0)
    out.min[at] = np.minimum.reduceat(x, first, axis=0) + origin
    out.max[at] = np.maximum.reduceat(x, first, axis=0) + origin
    return BinStats(start_ms, length_ms / steps, origin, out.count, out.sum, out.cross, out.min, out.max)
