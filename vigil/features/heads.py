"""Detection heads: how a window's recent bins depart from the same sensor's earlier bins.

Each head is a statistic of a recent *horizon* (the last few bins of the window: by default 1%, 5%
and 20% of its bins, 2.4 h, 12 h and 48 h of a 10-day window) computed from the per-bin
accumulators alone, and set against the same statistic over every earlier stretch of the same
length in the window (sliding blocks of the sensor's own history). Its raw value is that
difference in units of the blocks' spread, which already carries the sensor's autocorrelation,
daily cycle and noise, so one scale serves a sensor reading 0.01 and one reading 1000, hourly or
every second. The spread has a floor: the spread the blocks would have if their bins were
independent, so a reference that happens to be very calm cannot make any change look huge.

``shift``    the horizon's pooled mean (level shifts, drifts), after the sensor's daily profile
             where the history holds one (bins of whole fractions of a day, two days of reference);
``spread``   the log of the horizon's pooled within-bin variance (a stuck sensor, variance bursts),
             both ways;
``extreme``  the mean over the horizon's bins of the bin's largest excursion from its own mean, in
             within-bin standard deviations (spikes that a bin mean averages away), upwards only;
``profile``  the log of the between-bin variance of the horizon's (de-profiled) bin means (a lost
             daily cycle, oscillations), upwards only;
``corr``     per pair of features, Fisher's z of the horizon's pooled correlation (one horizon of
             ``CORR_HORIZON`` of the window: co-moments merged by Chan's formula, so a change
             that moves a single bin by about 1σ stands out pooled over a day or two);
``reference`` where the model keeps the sensor's own healthy reference (``SensorBaseline``: a
             window shorter than the history that shows what normal is, e.g. SKAB's seconds-long
             windows after an anomaly-free start), the squared Mahalanobis distance of the longest
             horizon's mean from that reference's mean, in its covariance (0 without one).

A window whose history is too short for a horizon (fewer than ``MIN_BLOCKS`` horizons of
reference) gets nothing from that horizon; with no usable horizon a head reads 0. Every reduction
runs within one window: a batch's windows do not depend on each other.

    >>> import numpy as np
    >>> from vigil.buffer.bins import bin_events
    >>> rng = np.random.default_rng(0)
    >>> ts = np.arange(0, 10 * 86_400_000, 600_000)
    >>> x = rng.normal(0, 1, (len(ts), 2))
    >>> x[ts > 9 * 86_400_000, 0] += 4.0   # feature 0 shifts on the last day
    >>> w = bin_events(ts, x, int(ts[-1]), 10 * 86_400_000, 240)
    >>> found = head_statistics(BinStats.stack([w]))
    >>> bool(found.raw[0, HEADS.index("shift")] > 10), int(found.feature[0, HEADS.index("shift")])
    (True, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vigil.buffer.bins import BinStats, diagonal_positions
from vigil.features.normalizer import SensorBaseline

HEADS = ("shift", "spread", "extreme", "profile", "corr", "reference")
# The recent horizons, as fractions of the window's bins (at least one bin each).
HORIZONS = (0.01, 0.05, 0.2)
CORR_HORIZON = 0.15
# A horizon is used once the history before it holds this many horizons.
MIN_BLOCKS = 2
DAY_MS = 86_400_000
# How far above or below the reference a spread of zero is taken to be (log scale): a stuck
# sensor's variance is ~0 and its log would be -inf.
VAR_FLOOR = 1e-6


@lru_cache(maxsize=None)
def horizons(steps: int, fractions: tuple[float, ...] = HORIZONS) -> tuple[int, ...]:
    """The horizons in bins for a window of ``steps`` bins (distinct, ascending)."""
    return tuple(sorted({max(1, int(round(f * steps))) for f in fractions}))


@dataclass(frozen=True)
class HeadStats:
    """Per window and head: the raw value (in reference spreads, >= 0), what it was found on, and
    the value before (the reference) and after (the horizon) in the statistic's own units."""

    raw: np.ndarray  # [B, H] float64
    feature: np.ndarray  # [B, H] feature index; for corr the pair's packed upper-triangle index
    horizon: np.ndarray  # [B, H] bins (0: the head had no usable horizon)
    before: np.ndarray  # [B, H]
    after: np.ndarray  # [B, H]
    recent_mean: np.ndarray  # [B, F] the last horizon's pooled mean (the fleet head's input)

    def __len__(self) -> int:
        return len(self.raw)

    def take(self, rows) -> "HeadStats":
        return HeadStats(*(getattr(self, f)[rows] for f in HEAD_FIELDS))

    def as_array(self) -> np.ndarray:
        """One ``[B, 5 * H + F]`` float64 array (to carry with a window set)."""
        return np.concatenate([self.raw, self.feature, self.horizon, self.before, self.after, self.recent_mean], axis=1)

    @staticmethod
    def width(n_features: int) -> int:
        return 5 * len(HEADS) + n_features

    @classmethod
    def from_array(cls, a: np.ndarray) -> "HeadStats":
        h = len(HEADS)
        parts = [a[:, i * h:(i + 1) * h] for i in range(5)]
        return cls(parts[0], parts[1].astype(np.intp), parts[2].astype(np.intp), parts[3], parts[4], a[:, 5 * h:])

    @classmethod
    def concat(cls, parts: list["HeadStats"]) -> "HeadStats":
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in HEAD_FIELDS))


HEAD_FIELDS = ("raw", "feature", "horizon", "before", "after", "recent_mean")


def head_statistics(bins: BinStats, baselines: list[SensorBaseline | None] | None = None) -> HeadStats:
    """Every head for a batch of windows (``BinStats`` with ``[B, S, ...]`` arrays); ``baselines``:
    each window's sensor reference, where the model has one."""
    b, s, f = bins.count.shape[0], bins.steps, bins.n_features
    with np.errstate(all="ignore"):
        ctx = _Context.of(bins)
        best = _Best(b, len(HEADS))
        profile = ctx.profile()
        for h in horizons(s):
            ref = ctx.reference(h)
            if ref.any():
                _shift_spread_extreme(ctx, h, ref, profile, best)
        hc = horizons(s, (CORR_HORIZON,))[0]
        ref = ctx.reference(hc)
        if f > 1 and ref.any():
            _corr(ctx, hc, ref, best)
        h = horizons(s)[-1]
        recent = ctx.recent_mean(h)
        if baselines is not None and any(b is not None for b in baselines):
            _reference(recent, baselines, h, best)
    return HeadStats(best.raw, best.feature, best.horizon, best.before, best.after, recent)


def _reference(recent: np.ndarray, baselines: list, h: int, best: "_Best") -> None:
    known = [i for i, b in enumerate(baselines) if b is not None]
    mean = np.stack([baselines[i].mean for i in known])
    cov = np.stack([baselines[i].cov for i in known])
    f = mean.shape[1]
    # A ridge of a thousandth of the average variance keeps a flat feature from dividing by ~0.
    ridge = 1e-3 * np.maximum(np.trace(cov, axis1=1, axis2=2) / f, 1e-12)
    precision = np.linalg.pinv(cov + ridge[:, None, None] * np.eye(f))
    d = recent[known] - mean
    raw = np.full((len(recent), 1), np.nan)
    raw[known, 0] = np.einsum("bi,bij,bj->b", d, precision, d)
    std = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 1e-300))
    which = np.zeros(len(recent), np.intp)
    which[known] = np.argmax(np.abs(d) / std, axis=1)
    before, after = np.zeros((len(recent), 1)), np.zeros((len(recent), 1))
    before[known, 0] = mean[np.arange(len(known)), which[known]]
    after[known, 0] = recent[known, which[known]]
    best.offer("reference", h, raw, before, after, names=None)
    k = HEADS.index("reference")
    best.feature[known, k] = which[known]


class _Best:
    """The largest value each head found so far, and where."""

    def __init__(self, b: int, h: int):
        self.raw = np.zeros((b, h))
        self.feature = np.zeros((b, h), np.intp)
        self.horizon = np.zeros((b, h), np.intp)
        self.before = np.zeros((b, h))
        self.after = np.zeros((b, h))

    def offer(self, head: str, h: int, z: np.ndarray, before: np.ndarray, after: np.ndarray,
              names: np.ndarray | None = None) -> None:
        """``z``, ``before``, ``after``: ``[B, K]`` per feature (or pair) at horizon ``h``; ``names``:
        what column ``k`` stands for (the feature index by default)."""
        k = HEADS.index(head)
        z = np.where(np.isfinite(z), z, 0.0)
        at = np.argmax(z, axis=1)
        top = np.take_along_axis(z, at[:, None], axis=1)[:, 0]
        better = top > self.raw[:, k]
        rows = np.flatnonzero(better)
        self.raw[rows, k] = top[rows]
        self.feature[rows, k] = at[rows] if names is None else names[at[rows]]
        self.horizon[rows, k] = h
        self.before[rows, k] = before[rows, at[rows]]
        self.after[rows, k] = after[rows, at[rows]]


@dataclass
class _Context:
    """Per-bin sums of a batch, centred on each window's overall mean (no cancellation at large
    levels), with their running totals for sliding blocks."""

    bins: BinStats
    first: np.ndarray  # [B] first non-empty bin
    centre: np.ndarray  # [B, F]
    dev: np.ndarray  # [B, S, F] bin mean - centre (0 in empty bins)
    within: np.ndarray  # [B, S, F] within-bin sum of squares (co-moment diagonal)

    @classmethod
    def of(cls, bins: BinStats) -> "_Context":
        nonempty = bins.count > 0
        first = np.where(nonempty.any(axis=1), np.argmax(nonempty, axis=1), bins.steps)
        n = bins.count[:, :, None]
        centre = (n * bins.mean).sum(axis=1) / np.maximum(n.sum(axis=1), 1.0)
        dev = np.where(nonempty[:, :, None], bins.mean - centre[:, None], 0.0)
        within = bins.co[:, :, diagonal_positions(bins.n_features)]
        return cls(bins, first, centre, dev, within)

    def reference(self, h: int) -> np.ndarray:
        """``[B]``: whether the window has ``MIN_BLOCKS`` horizons of history before its last ``h`` bins."""
        return self.bins.steps - h - self.first >= MIN_BLOCKS * h

    def ref_mask(self, h: int) -> np.ndarray:
        at = np.arange(self.bins.steps)
        return (at >= self.first[:, None]) & (at < self.bins.steps - h)

    def profile(self) -> np.ndarray | None:
        """``[B, S, F]``: each bin's expected deviation at its time of day, from the bins before the
        longest horizon, where a day is a whole number of bins and those bins cover two days; 0
        elsewhere (and None when no window of the batch can have one)."""
        bin_ms, s = self.bins.bin_ms, self.bins.steps
        period, rest = divmod(DAY_MS, bin_ms)
        if rest or period < 4 or s < 3 * period:
            return None
        h = horizons(s)[-1]
        b, f = self.dev.shape[0], self.dev.shape[2]
        mask = self.ref_mask(h) & ((s - h - self.first) >= 2 * period)[:, None]
        phase = (np.asarray(self.bins.first_bin).reshape(-1, 1) + np.arange(s)) % period  # [B, S]
        slot = (np.arange(b)[:, None] * period + phase).ravel()  # (window, time of day)
        w = (self.bins.count * mask).ravel()
        total = np.bincount(slot, w, b * period).reshape(b, period)
        sums = np.stack([np.bincount(slot, w * self.dev[:, :, j].ravel(), b * period) for j in range(f)],
                        axis=1).reshape(b, period, f)
        level = sums / np.maximum(total, 1.0)[:, :, None]
        # The profile's own mean is the reference's level: only its shape is removed.
        level -= (sums.sum(axis=1) / np.maximum(total.sum(axis=1), 1.0)[:, None])[:, None]
        out = np.take_along_axis(level, phase[:, :, None], axis=1)
        return np.where(mask.any(axis=1)[:, None, None], out, 0.0)

    def recent_mean(self, h: int) -> np.ndarray:
        n = self.bins.count[:, -h:, None]
        return self.centre + (n * self.dev[:, -h:]).sum(axis=1) / np.maximum(n.sum(axis=1), 1.0)


def _blocks(values: np.ndarray, h: int) -> np.ndarray:
    """Sums over every run of ``h`` consecutive bins, by the run's last bin: ``[B, S, ...]``
    (the first ``h - 1`` positions hold partial sums)."""
    c = np.cumsum(values, axis=1)
    out = c.copy()
    out[:, h:] = c[:, h:] - c[:, :-h]
    return out


def _against_blocks(ctx: _Context, h: int, ref: np.ndarray, value: np.ndarray, valid: np.ndarray,
                    floor: np.ndarray) -> np.ndarray:
    """``(value at the last block - mean of the reference blocks) / their spread`` per window and
    feature: ``value`` ``[B, S, K]`` by block end, ``valid`` ``[B, S, K]``, ``floor`` ``[B, K]``."""
    s = ctx.bins.steps
    at = np.arange(s)
    # Reference blocks lie wholly in the history before the horizon.
    in_ref = (at >= ctx.first[:, None] + h - 1) & (at <= s - 1 - h) & ref[:, None]
    ok = valid & in_ref[:, :, None]
    k = ok.sum(axis=1)
    v = np.where(ok, value, 0.0)
    mean = v.sum(axis=1) / np.maximum(k, 1)
    var = (np.where(ok, (value - mean[:, None]) ** 2, 0.0)).sum(axis=1) / np.maximum(k - 1, 1)
    spread = np.maximum(np.sqrt(var), floor)
    z = (value[:, -1] - mean) / spread
    return np.where((k >= 2) & valid[:, -1] & ref[:, None], z, np.nan)


def _shift_spread_extreme(ctx: _Context, h: int, ref: np.ndarray, profile: np.ndarray | None, best: _Best) -> None:
    bins = ctx.bins
    n = bins.count[:, :, None]
    nonempty = n > 0
    dev = ctx.dev - profile if profile is not None else ctx.dev
    dev = np.where(nonempty, dev, 0.0)
    refmask = ctx.ref_mask(h)[:, :, None] & nonempty
    nbins = _blocks(nonempty.astype(np.float64), h)  # non-empty bins per block
    # Bin-level spreads in the reference, for the independent-bins floors.
    kref = np.maximum(refmask.sum(axis=1), 2)

    def ref_sd(per_bin: np.ndarray) -> np.ndarray:
        m = np.where(refmask, per_bin, 0.0).sum(axis=1) / kref
        return np.sqrt(np.where(refmask, (per_bin - m[:, None]) ** 2, 0.0).sum(axis=1) / (kref - 1))

    # shift: the block's pooled (de-profiled) mean.
    events = _blocks(np.broadcast_to(n, dev.shape), h)
    mean = _blocks(n * dev, h) / np.maximum(events, 1.0)
    floor = ref_sd(dev) / np.sqrt(h)
    z = _against_blocks(ctx, h, ref, mean, events > 0, np.maximum(floor, 1e-12))
    ref_level = ctx.centre + np.where(refmask, n * dev, 0.0).sum(axis=1) / np.maximum(np.where(refmask, n, 0).sum(axis=1), 1)
    best.offer("shift", h, np.abs(z), ref_level, ctx.centre + mean[:, -1])

    # spread: log pooled within-bin variance (bins of two or more events).
    dof = _blocks(np.maximum(np.broadcast_to(n, dev.shape) - 1.0, 0.0), h)
    ss = _blocks(ctx.within, h)
    ref_var = np.where(refmask, ctx.within, 0.0).sum(axis=1) / np.maximum(
        np.where(refmask, np.maximum(n - 1.0, 0.0), 0.0).sum(axis=1), 1.0)
    logvar = np.log(ss / np.maximum(dof, 1.0) + VAR_FLOOR * ref_var[:, None] + 1e-300)
    z = _against_blocks(ctx, h, ref, logvar, dof >= 1, np.sqrt(2.0 / np.maximum(dof[:, -1], 1.0)))
    best.offer("spread", h, np.abs(z), np.sqrt(ref_var), np.sqrt(ss[:, -1] / np.maximum(dof[:, -1], 1.0)))

    # extreme: the bin's largest excursion from its own mean, in within-bin standard deviations.
    sd = np.sqrt(np.maximum(ref_var, 1e-300))[:, None]
    excursion = np.maximum(bins.max - bins.mean, bins.mean - bins.min) / sd
    excursion = np.where(nonempty, excursion, 0.0)
    mean_exc = _blocks(excursion, h) / np.maximum(nbins, 1.0)
    floor = ref_sd(excursion) / np.sqrt(h)
    z = _against_blocks(ctx, h, ref, mean_exc, nbins > 0, np.maximum(floor, 1e-12))
    ref_exc = np.where(refmask, excursion, 0.0).sum(axis=1) / np.maximum(refmask.sum(axis=1), 1)
    best.offer("extreme", h, z, ref_exc, mean_exc[:, -1])

    # profile: between-bin variance of the block's bin means around the block's mean (log).
    if h >= 3:
        sq = _blocks(n * dev**2, h)
        between = sq / np.maximum(events, 1.0) - mean**2
        ref_between = ref_sd(dev) ** 2
        logb = np.log(np.maximum(between, 0.0) + VAR_FLOOR * ref_var[:, None] + 1e-300)
        z = _against_blocks(ctx, h, ref, logb, nbins >= 2, np.full(logb.shape[::2], np.sqrt(2.0 / (h - 1))))
        best.offer("profile", h, z, np.sqrt(ref_between), np.sqrt(np.maximum(between[:, -1], 0.0)))


def _corr(ctx: _Context, h: int, ref: np.ndarray, best: _Best) -> None:
    bins = ctx.bins
    f = bins.n_features
    iu, ju = np.triu_indices(f)
    pairs = np.flatnonzero(iu != ju)
    n = bins.count[:, :, None]
    dev = ctx.dev
    events = _blocks(bins.count, h)[:, :, None]
    m = _blocks(n * dev, h) / np.maximum(events, 1.0)  # [B, S, F]
    second = _blocks(bins.co + n * dev[:, :, iu] * dev[:, :, ju], h) / np.maximum(events, 1.0)  # [B, S, P]
    cov = second - m[:, :, iu] * m[:, :, ju]
    var = np.maximum(cov[:, :, diagonal_positions(f)], 0.0)
    r = cov[:, :, pairs] / np.sqrt(var[:, :, iu[pairs]] * var[:, :, ju[pairs]])
    r = np.clip(r, -0.999999, 0.999999)
    fz = np.arctanh(r)
    valid = np.isfinite(fz) & (events >= 4)
    floor = 1.0 / np.sqrt(np.maximum(events[:, -1] - 3.0, 1.0))  # [B, 1]
    z = _against_blocks(ctx, h, ref, np.where(valid, fz, 0.0), valid, np.broadcast_to(floor, (len(r), len(pairs))))
    # "before": the reference's pooled correlation, from every bin before the horizon.
    mask = ctx.ref_mask(h)
    w = bins.count * mask
    nn = np.maximum(w.sum(axis=1), 1.0)[:, None]
    mm = (w[:, :, None] * dev).sum(axis=1) / nn
    sec = ((bins.co * mask[:, :, None]) + w[:, :, None] * dev[:, :, iu] * dev[:, :, ju]).sum(axis=1) / nn
    c = sec - mm[:, iu] * mm[:, ju]
    d = np.maximum(c[:, diagonal_positions(f)], 0.0)
    r_before = c[:, pairs] / np.sqrt(d[:, iu[pairs]] * d[:, ju[pairs]])
    # The pair the head names is its packed upper-triangle position.
    best.offer("corr", h, np.abs(z), r_before, r[:, -1], names=pairs)
