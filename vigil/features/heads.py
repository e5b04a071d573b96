"""Detection heads: how a window's recent bins depart from the same sensor's earlier bins.

Each head is a statistic of a recent *horizon* (the last few bins of the window: by default 1%, 5%
and 20% of its bins, 2.4 h, 12 h and 48 h of a 10-day window) computed from the per-bin
accumulators alone, and set against the same statistic over every earlier stretch of the same
length in the window (sliding blocks of the sensor's own history). Its raw value is that
difference in units of the blocks' spread (median and median absolute deviation: robust to the
blocks that already hold an anomaly), which already carries the sensor's autocorrelation,
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
``corr``     per pair of features, Fisher's z of the horizon's pooled correlation (horizons of
             ``CORR_HORIZONS`` of the window: co-moments merged by Chan's formula, so a change
             that moves a single bin by about 1σ stands out pooled over half a day to two days);
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
from functools import cached_property, lru_cache

import numpy as np

from vigil.buffer.bins import BinStats, diagonal_positions
from vigil.durations import DAY_MS
from vigil.features.normalizer import SensorBaseline

HEADS = ("shift", "spread", "extreme", "profile", "corr", "reference")
# The recent horizons, as fractions of the window's bins (at least one bin each).
HORIZONS = (0.01, 0.05, 0.2)
CORR_HORIZONS = (0.05, 0.15)
# A horizon is used once the history before it holds this many horizons.
MIN_BLOCKS = 2
# The reference blocks of a horizon are sampled at most this many times (evenly): enough for a
# mean and a spread, and the cost no longer grows with the window's bins.
MAX_BLOCKS = 32
# How far above or below the reference a spread of zero is taken to be (log scale): a stuck
# sensor's variance is ~0 and its log would be -inf.
VAR_FLOOR = 1e-6
MAD_TO_SD = 1.4826  # a normal law's standard deviation over its median absolute deviation


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


HEAD_FIELDS = ("raw", "feature", "horizon", "before", "after", "recent_mean")


def head_statistics(bins: BinStats, baselines: list[SensorBaseline | None] | None = None) -> HeadStats:
    """Every head for a batch of windows (``BinStats`` with ``[B, S, ...]`` arrays); ``baselines``:
    each window's sensor reference, where the model has one."""
    b, s, f = bins.count.shape[0], bins.steps, bins.n_features
    with np.errstate(all="ignore"):
        ctx = _Context(bins)
        best = _Best(b, len(HEADS))
        for h in horizons(s):
            ref = ctx.reference(h)
            if ref.any():
                _shift_spread_extreme(ctx, h, ref, best)
        for hc in horizons(s, CORR_HORIZONS) if f > 1 else ():
            ref = ctx.reference(hc)
            if ref.any():
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


class _Context:
    """A batch's per-bin quantities, centred on each window's overall mean (no cancellation at large
    levels) and de-profiled, as running sums along the bins: any block's sum is a difference of two."""

    def __init__(self, bins: BinStats):
        self.bins = bins
        b, s, f = bins.count.shape[0], bins.steps, bins.n_features
        n = bins.count
        nonempty = n > 0
        self.first = np.where(nonempty.any(axis=1), np.argmax(nonempty, axis=1), s)
        self.centre = (n[:, :, None] * bins.mean).sum(axis=1) / np.maximum(n.sum(axis=1), 1.0)[:, None]
        raw_dev = np.where(nonempty[:, :, None], bins.mean - self.centre[:, None], 0.0)
        self.raw_dev = raw_dev
        profile = self._profile(raw_dev)
        dev = raw_dev - profile if profile is not None else raw_dev
        dev = np.where(nonempty[:, :, None], dev, 0.0)
        within = bins.co[:, :, diagonal_positions(f)]
        excursion = np.where(nonempty[:, :, None], np.maximum(bins.max - bins.mean, bins.mean - bins.min), 0.0)
        ne = nonempty.astype(np.float64)
        nw = n[:, :, None]
        self._first_sums: dict[str, np.ndarray] = {}
        # Running sums along the bins, with a leading zero: the sum over bins [a, e] is
        # c[:, e + 1] - c[:, a].
        self.c = {name: _running(v) for name, v in (
            ("n", n), ("ne", ne), ("dof", np.maximum(n - 1.0, 0.0)), ("s1", nw * dev), ("s2", nw * dev**2),
            ("within", within), ("exc", excursion), ("exc2", excursion**2), ("d1", dev), ("d2", dev**2))}

    def _profile(self, dev: np.ndarray) -> np.ndarray | None:
        """``[B, S, F]``: each bin's expected deviation at its time of day, from the bins before the
        longest horizon, where a day is a whole number of bins and those bins cover two days; 0
        elsewhere (and None when no window of the batch can have one)."""
        bins = self.bins
        bin_ms, s = bins.bin_ms, bins.steps
        period, rest = divmod(DAY_MS, bin_ms)
        if rest or period < 4 or s < 3 * period:
            return None
        h = horizons(s)[-1]
        b, f = dev.shape[0], dev.shape[2]
        at = np.arange(s)
        mask = (at >= self.first[:, None]) & (at < s - h) & ((s - h - self.first) >= 2 * period)[:, None]
        phase = (np.asarray(bins.first_bin).reshape(-1, 1) + at) % period  # [B, S]
        slot = (np.arange(b)[:, None] * period + phase).ravel()  # (window, time of day)
        w = (bins.count * mask).ravel()
        total = np.bincount(slot, w, b * period).reshape(b, period)
        sums = np.stack([np.bincount(slot, w * dev[:, :, j].ravel(), b * period) for j in range(f)],
                        axis=1).reshape(b, period, f)
        level = sums / np.maximum(total, 1.0)[:, :, None]
        # The profile's own mean is the reference's level: only its shape is removed.
        level -= (sums.sum(axis=1) / np.maximum(total.sum(axis=1), 1.0)[:, None])[:, None]
        out = np.take_along_axis(level, phase[:, :, None], axis=1)
        return np.where(mask.any(axis=1)[:, None, None], out, 0.0)

    @cached_property
    def co_moments(self) -> dict[str, np.ndarray]:
        """Running event counts, sums and co-moments of the bins' deviations before de-profiling:
        the daily cycle a pair of features shares is part of how they move together."""
        bins, dev = self.bins, self.raw_dev
        iu, ju = np.triu_indices(bins.n_features)
        n = bins.count[:, :, None]
        return {"n": self.c["n"][:, :, None], "s1": _running(n * dev),
                "m2": _running(bins.co + n * dev[:, :, iu] * dev[:, :, ju])}

    def reference(self, h: int) -> np.ndarray:
        """``[B]``: whether the window has ``MIN_BLOCKS`` horizons of history before its last ``h`` bins."""
        return self.bins.steps - h - self.first >= MIN_BLOCKS * h

    def ends(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        """The reference blocks of ``h`` bins: their last bins, at most ``MAX_BLOCKS`` spread evenly
        over the history before the horizon (``[P]``), and which lie wholly in each window's
        history (``[B, P]``)."""
        s = self.bins.steps
        ends = np.unique(np.linspace(h - 1, s - 1 - h, min(MAX_BLOCKS, max(s - 2 * h + 1, 1))).round().astype(np.intp))
        return ends, ends[None, :] >= self.first[:, None] + h - 1

    def blocks(self, name: str, h: int, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sums of ``name`` over the blocks ending at ``ends`` (``[B, P, ...]``) and over the
        last ``h`` bins (``[B, ...]``)."""
        c = self.c[name]
        s = self.bins.steps
        return c.take(ends + 1, axis=1) - c.take(ends + 1 - h, axis=1), c[:, s] - c[:, s - h]

    def history(self, name: str, h: int) -> np.ndarray:
        """The sum of ``name`` over each window's bins before its last ``h``."""
        return self.c[name][:, self.bins.steps - h] - self.at_first(name)

    def at_first(self, name: str) -> np.ndarray:
        """The running sum of ``name`` where each window's history starts."""
        if name not in self._first_sums:
            self._first_sums[name] = self.c[name][np.arange(len(self.first)), np.minimum(self.first, self.bins.steps)]
        return self._first_sums[name]

    def recent_mean(self, h: int) -> np.ndarray:
        n = self.bins.count[:, -h:, None]
        return self.centre + (n * self.raw_dev[:, -h:]).sum(axis=1) / np.maximum(n.sum(axis=1), 1.0)


def _running(v: np.ndarray) -> np.ndarray:
    """``[B, S + 1, ...]`` running sums over the bins of ``v`` ``[B, S, ...]``, from 0."""
    out = np.zeros((v.shape[0], v.shape[1] + 1) + v.shape[2:])
    np.cumsum(v, axis=1, out=out[:, 1:])
    return out


def _z(ref_values: np.ndarray, ok: np.ndarray, last: np.ndarray, last_ok: np.ndarray, usable: np.ndarray,
       floor: np.ndarray) -> np.ndarray:
    """``(last - centre of the reference blocks) / their spread``, per window and feature:
    ``ref_values`` ``[B, P, K]`` with ``ok`` ``[B, P, K]``, ``last`` ``[B, K]``, ``floor`` ``[B, K]``.

    The centre is the blocks' median and the spread their median absolute deviation (scaled to a
    standard deviation). The blocks run up to the horizon, so once an anomaly is older than the
    horizon the blocks just before it hold the anomaly too: a mean and a standard deviation would
    take those blocks as normal variation and the anomaly's z would fall while it lasts. The
    median ignores such blocks while they are a minority."""
    k = ok.sum(axis=1)
    centre = _masked_median(ref_values, ok, k)
    spread = MAD_TO_SD * _masked_median(np.abs(ref_values - centre[:, None]), ok, k)
    z = (last - centre) / np.maximum(spread, floor)
    return np.where((k >= 2) & last_ok & usable[:, None], z, np.nan)


def _masked_median(v: np.ndarray, ok: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The median along axis 1 of the ``ok`` entries of ``v`` ``[B, P, K]`` (``k`` ``[B, K]`` of them)."""
    v = np.sort(np.where(ok, v, np.inf), axis=1)
    lo, hi = np.maximum(k - 1, 0) // 2, k // 2
    return 0.5 * (np.take_along_axis(v, lo[:, None], axis=1)[:, 0] + np.take_along_axis(v, hi[:, None], axis=1)[:, 0])


def _history_sd(ctx: _Context, h: int, one: str, two: str) -> np.ndarray:
    """The spread of a per-bin quantity over the non-empty bins before the horizon (from its running
    sum and sum of squares): the independent-bins floors."""
    k = np.maximum(ctx.history("ne", h), 2.0)[:, None]
    m1, m2 = ctx.history(one, h) / k, ctx.history(two, h) / k
    return np.sqrt(np.maximum(m2 - m1**2, 0.0) * k / (k - 1))


def _shift_spread_extreme(ctx: _Context, h: int, ref: np.ndarray, best: _Best) -> None:
    ends, inside = ctx.ends(h)
    inside = inside[:, :, None]
    n, n_last = ctx.blocks("n", h, ends)
    n, n_last = n[:, :, None], n_last[:, None]
    s1, s1_last = ctx.blocks("s1", h, ends)
    mean, mean_last = s1 / np.maximum(n, 1.0), s1_last / np.maximum(n_last, 1.0)
    hist_n = np.maximum(ctx.history("n", h), 1.0)[:, None]

    # shift: the block's pooled (de-profiled) mean.
    floor = np.maximum(_history_sd(ctx, h, "d1", "d2") / np.sqrt(h), 1e-12)
    z = _z(mean, inside & (n > 0), mean_last, n_last > 0, ref, floor)
    ref_level = ctx.centre + ctx.history("s1", h) / hist_n
    best.offer("shift", h, np.abs(z), ref_level, ctx.centre + mean_last)

    # spread: log pooled within-bin variance (bins of two or more events), both ways.
    dof, dof_last = ctx.blocks("dof", h, ends)
    dof, dof_last = dof[:, :, None], dof_last[:, None]
    ss, ss_last = ctx.blocks("within", h, ends)
    ref_var = ctx.history("within", h) / np.maximum(ctx.history("dof", h), 1.0)[:, None]
    pad = VAR_FLOOR * ref_var[:, None] + 1e-300
    logvar = np.log(ss / np.maximum(dof, 1.0) + pad)
    last_var = ss_last / np.maximum(dof_last, 1.0)
    z = _z(logvar, inside & (dof >= 1), np.log(last_var + pad[:, 0]), dof_last >= 1, ref,
           np.sqrt(2.0 / np.maximum(dof_last, 1.0)))
    best.offer("spread", h, np.abs(z), np.sqrt(ref_var), np.sqrt(last_var))

    # extreme: the bin's largest excursion from its own mean, in within-bin standard deviations.
    sd = np.sqrt(np.maximum(ref_var, 1e-300))
    nb, nb_last = ctx.blocks("ne", h, ends)
    nb, nb_last = nb[:, :, None], nb_last[:, None]
    exc, exc_last = ctx.blocks("exc", h, ends)
    exc, exc_last = exc / np.maximum(nb, 1.0), exc_last / np.maximum(nb_last, 1.0)
    floor = np.maximum(_history_sd(ctx, h, "exc", "exc2") / np.sqrt(h), 1e-12 * sd)
    z = _z(exc, inside & (nb > 0), exc_last, nb_last > 0, ref, floor)
    ref_exc = ctx.history("exc", h) / np.maximum(ctx.history("ne", h), 1.0)[:, None]
    best.offer("extreme", h, z, ref_exc / sd, exc_last / sd)

    # profile: the between-bin variance of the block's bin means around the block's mean (log).
    if h >= 3:
        s2, s2_last = ctx.blocks("s2", h, ends)
        between = np.maximum(s2 / np.maximum(n, 1.0) - mean**2, 0.0)
        between_last = np.maximum(s2_last / np.maximum(n_last, 1.0) - mean_last**2, 0.0)
        logb = np.log(between + pad)
        z = _z(logb, inside & (nb >= 2), np.log(between_last + pad[:, 0]), nb_last >= 2, ref,
               np.full(mean_last.shape, np.sqrt(2.0 / (h - 1))))
        best.offer("profile", h, z, _history_sd(ctx, h, "d1", "d2"), np.sqrt(between_last))


def _corr(ctx: _Context, h: int, ref: np.ndarray, best: _Best) -> None:
    bins = ctx.bins
    b, s, f = len(bins.count), bins.steps, bins.n_features
    iu, ju = np.triu_indices(f)
    pairs = np.flatnonzero(iu != ju)
    running = ctx.co_moments
    ends, inside = ctx.ends(h)

    def correlation(lo: np.ndarray, hi: np.ndarray):
        """Pooled correlation and events of the bins [lo, hi) per window: ``lo``, ``hi`` ``[B, K]``."""
        rows = np.arange(b)[:, None]

        def total(name):
            c = running[name]
            return c[rows, hi] - c[rows, lo]
        events = total("n")
        m = total("s1") / np.maximum(events, 1.0)
        cov = total("m2") / np.maximum(events, 1.0) - m[..., iu] * m[..., ju]
        var = np.maximum(cov[..., diagonal_positions(f)], 0.0)
        return cov[..., pairs] / np.sqrt(var[..., iu[pairs]] * var[..., ju[pairs]]), events

    stops = np.broadcast_to(np.r_[ends, s - 1] + 1, (b, len(ends) + 1))  # the reference blocks, then the horizon
    r, events = correlation(stops - h, stops)
    fz = np.arctanh(np.clip(r, -0.999999, 0.999999))
    valid = np.isfinite(fz) & (events >= 4)
    floor = 1.0 / np.sqrt(np.maximum(events[:, -1] - 3.0, 1.0))  # [B, 1]
    z = _z(fz[:, :-1], valid[:, :-1] & inside[:, :, None], fz[:, -1], valid[:, -1], ref,
           np.broadcast_to(floor, (b, len(pairs))))
    # "before": the pooled correlation of every bin before the horizon.
    r_before, _ = correlation(np.minimum(ctx.first, s - h)[:, None], np.full((b, 1), s - h))
    # The pair the head names is its packed upper-triangle position.
    best.offer("corr", h, np.abs(z), r_before[:, 0], r[:, -1], names=pairs)
