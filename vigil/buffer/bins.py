"""Per-bin accumulators: what the buffer stores of a sensor's events, on an epoch-aligned grid of bins.

Bin ``b`` of width ``bin_ms`` holds the events with ``b * bin_ms <= ts < (b + 1) * bin_ms``. Per
bin the record keeps the event count, the minimum, maximum and running mean of each feature, and
the co-moment matrix (sum of ``(x - mean)(x - mean)^T``, upper triangle): every channel the model
sees is computed from these alone (:mod:`vigil.features.window`). The mean is stored as its
distance above the minimum: a float32 of 1000.01 keeps 4 decimals, its 0.01 above 1000 keeps 9,
so a bin's spread stays exact to float64 arithmetic even when it is tiny next to its level.

The records are updated one event at a time (Welford's update, in float64, each field stored back
as float32), like Flink's ``AggregateFunction``: the streamer's Lua apply script
(``vigil/buffer/scripts.py``) keeps them in Redis and :func:`accumulate` is the same arithmetic
over a sorted event table, so a window read from the buffer is bit for bit the window a file gives
(for events that arrived in time order). ``tests/unit/test_bins.py`` holds the two to that.

A window of ``steps`` bins ends at the bin its newest event is in, whatever part of that bin has
passed (the current, partial bin).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def record_dtype(n_features: int) -> np.dtype:
    """One bin's record, as Redis stores it (little-endian, packed; the Lua script's layout)."""
    f = n_features
    return np.dtype([("n", "<u4"), ("above", "<f4", (f,)), ("min", "<f4", (f,)), ("max", "<f4", (f,)),
                     ("co", "<f4", (f * (f + 1) // 2,))])


@lru_cache(maxsize=None)
def _upper(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n_features)


def empty_records(count: int, n_features: int) -> np.ndarray:
    out = np.zeros(count, dtype=record_dtype(n_features))
    out["min"], out["max"] = np.inf, -np.inf
    return out


def update(state: np.ndarray, x: np.ndarray) -> None:
    """Add one event per record (``x``: ``[len(state), F]`` float32 values), in place.

    The Lua apply script performs exactly these float64 operations in this order and rounds to
    float32 where this does: change one, change both."""
    iu, ju = _upper(x.shape[1])
    x32 = x.astype(np.float32)
    x = x32.astype(np.float64)
    n = state["n"].astype(np.float64)
    n1 = n + 1.0
    mean = np.where((n > 0)[:, None], state["min"].astype(np.float64) + state["above"].astype(np.float64), 0.0)
    d = x - mean
    mean1 = mean + d / n1[:, None]
    e = x - mean1
    state["co"] = (state["co"].astype(np.float64) + d[:, iu] * e[:, ju]).astype(np.float32)
    state["min"] = np.minimum(state["min"], x32)
    state["max"] = np.maximum(state["max"], x32)
    state["above"] = (mean1 - state["min"].astype(np.float64)).astype(np.float32)
    state["n"] = n1.astype(np.uint32)


@dataclass(frozen=True)
class SensorBins:
    """A sensor's non-empty bins, ascending: ``index[i]`` is the bin number of ``records[i]``."""

    bin_ms: int
    index: np.ndarray  # [B] int64
    records: np.ndarray  # [B] record_dtype

    @property
    def n_features(self) -> int:
        return self.records.dtype["min"].shape[0]

    @property
    def n_events(self) -> int:
        return int(self.records["n"].sum())

    def window(self, last_bin: int, steps: int, bin_ms: int | None = None, partial: np.void | None = None,
               until: int | None = None, end_ms: int | None = None) -> "BinStats":
        """The ``steps`` bins of width ``bin_ms`` (a whole multiple of this grid's) ending at
        bin ``last_bin`` of that width; ``partial`` replaces the record of the last bin (a window
        ending before that bin was complete), ``until`` leaves out this grid's bins after it.
        Coarser bins merge the finer ones (:func:`merge_records`). ``end_ms``: when the window
        ends (how much of its last bin has passed; the bin's end by default)."""
        bin_ms = bin_ms or self.bin_ms
        k, rest = divmod(bin_ms, self.bin_ms)
        if rest or k < 1:
            raise ValueError(f"bins of {bin_ms} ms cannot be made from stored bins of {self.bin_ms} ms")
        first = last_bin - steps + 1
        stop = (last_bin + 1) * k if until is None else min((last_bin + 1) * k, until + 1)
        lo, hi = np.searchsorted(self.index, [first * k, stop])
        index, records = self.index[lo:hi], self.records[lo:hi]
        if partial is not None:
            if k != 1:
                raise ValueError("a partial last bin is one of this grid's bins: pass bins of this grid")
            keep = index < last_bin * k
            index = np.concatenate([index[keep], [last_bin * k]])
            records = np.concatenate([records[keep], np.array([partial], records.dtype)])
        if k > 1 and len(index):
            index, records = merge_records(index // k, records)
        out = empty_records(steps, self.n_features)
        out[index - first] = records
        return BinStats.of(first, bin_ms, out, end_ms)


def merge_records(groups: np.ndarray, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Records with the same (ascending) group number merged into one (Chan's parallel update):
    a coarser grid from a finer one."""
    f = records.dtype["min"].shape[0]
    iu, ju = _upper(f)
    keys, start = np.unique(groups, return_index=True)
    stats = BinStats.of(0, 1, records)
    n = np.add.reduceat(stats.count, start)
    mean = np.add.reduceat(stats.count[:, None] * stats.mean, start) / np.maximum(n, 1)[:, None]
    dev = stats.mean - np.repeat(mean, np.diff(np.r_[start, len(records)]), axis=0)
    co = np.add.reduceat(stats.co + stats.count[:, None] * dev[:, iu] * dev[:, ju], start)
    out = empty_records(len(keys), f)
    out["n"], out["co"] = n, co
    out["min"] = np.minimum.reduceat(records["min"], start)
    out["max"] = np.maximum.reduceat(records["max"], start)
    out["above"] = mean - out["min"]
    return keys, out


def full_matrix(packed: np.ndarray, n_features: int) -> np.ndarray:
    """``[..., F(F+1)/2]`` upper triangles → ``[..., F, F]`` symmetric matrices."""
    iu, ju = _upper(n_features)
    out = np.empty(packed.shape[:-1] + (n_features, n_features))
    out[..., iu, ju] = packed
    out[..., ju, iu] = packed
    return out


def diagonal_positions(n_features: int) -> np.ndarray:
    """Where the variances sit in a packed upper triangle."""
    iu, ju = _upper(n_features)
    return np.flatnonzero(iu == ju)


@dataclass(frozen=True)
class BinStats:
    """Windows' bins, dense and in float64: what the channels are computed from. One window has
    arrays of ``[S, ...]``; a batch of windows (a streamer batch) has ``[B, S, ...]``."""

    first_bin: int | np.ndarray  # bin number of bin 0 (per window in a batch)
    bin_ms: int
    count: np.ndarray  # [S]
    mean: np.ndarray  # [S, F] (0 in empty bins)
    co: np.ndarray  # [S, F(F+1)/2] co-moments, upper triangle (full_matrix)
    min: np.ndarray  # [S, F] (+inf or 0 in empty bins: read ``count`` first)
    max: np.ndarray  # [S, F] (-inf or 0 in empty bins)
    end_ms: int | np.ndarray  # when the (each) window ends, inside its last bin

    @classmethod
    def of(cls, first_bin, bin_ms: int, records: np.ndarray, end_ms=None) -> "BinStats":
        """From records ``[S]`` (one window) or ``[B, S]`` (a batch); ``end_ms`` defaults to the
        last bin's end (a complete bin)."""
        count = records["n"].astype(np.float64)
        low = records["min"].astype(np.float64)
        mean = np.where((count > 0)[..., None], low + records["above"].astype(np.float64), 0.0)
        if end_ms is None:
            end_ms = (np.asarray(first_bin) + count.shape[-1]) * bin_ms - 1
        return cls(first_bin, bin_ms, count, mean, records["co"].astype(np.float64), low,
                   records["max"].astype(np.float64), end_ms)

    @classmethod
    def stack(cls, windows: list["BinStats"]) -> "BinStats":
        return cls(np.array([w.first_bin for w in windows]), windows[0].bin_ms,
                   *(np.stack([getattr(w, f) for w in windows]) for f in ("count", "mean", "co", "min", "max")),
                   np.array([w.end_ms for w in windows]))

    def take(self, rows: np.ndarray) -> "BinStats":
        """These windows of a batch."""
        return BinStats(np.asarray(self.first_bin)[rows], self.bin_ms,
                        *(getattr(self, f)[rows] for f in ("count", "mean", "co", "min", "max")),
                        np.asarray(self.end_ms)[rows])

    @property
    def last_bin_elapsed(self):
        """The share of the (each) window's last bin that had passed when it ended, in (0, 1]."""
        last_start = (np.asarray(self.first_bin) + self.steps - 1) * self.bin_ms
        return np.clip((np.asarray(self.end_ms) - last_start + 1) / self.bin_ms, 1.0 / self.bin_ms, 1.0)

    @property
    def steps(self) -> int:
        return self.count.shape[-1]

    @property
    def n_features(self) -> int:
        return self.mean.shape[-1]

    def first_event_bin_ms(self):
        """Where the (each) window's first non-empty bin starts (-1 for a window without events)."""
        nonempty = self.count > 0
        first = (self.first_bin + np.argmax(nonempty, axis=-1)) * self.bin_ms
        return np.where(nonempty.any(axis=-1), first, -1)

    def moments(self, mask: np.ndarray, packed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per window of a batch, the count, mean and covariance (population) of the events in the
        bins ``mask`` (``[B, S]``, 0/1) selects, the covariance at the ``packed`` upper-triangle
        positions only (all by default): ``[B]``, ``[B, F]``, ``[B, len(packed)]``. Chan's merge,
        each window's own bins only."""
        iu, ju = _upper(self.n_features)
        packed = np.arange(len(iu)) if packed is None else packed
        w = self.count * mask
        n = w.sum(axis=1)
        safe = np.maximum(n, 1.0)[:, None]
        mu = (w[:, :, None] * self.mean).sum(axis=1) / safe
        dev = self.mean - mu[:, None, :]
        m2 = (self.co[:, :, packed] * mask[:, :, None]).sum(axis=1) \
            + (w[:, :, None] * dev[:, :, iu[packed]] * dev[:, :, ju[packed]]).sum(axis=1)
        return n, mu, m2 / safe

    def merged(self, bins: slice | np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Count, mean and covariance (population) of the events in ``bins`` of one window."""
        mask = np.zeros((1, self.steps))
        mask[0, bins] = 1.0
        n, mu, cov = BinStats.stack([self]).moments(mask)
        return float(n[0]), mu[0], full_matrix(cov[0], self.n_features)


def accumulate(ts_ms: np.ndarray, values: np.ndarray, bin_ms: int,
               snapshots: np.ndarray | None = None) -> tuple[SensorBins, np.ndarray]:
    """The bins of a sensor's events (``ts_ms`` sorted; values rounded to float32), and the record
    of each event in ``snapshots`` (indices) as it stood right after that event: the partial last
    bin of a window ending there. Events of a bin are added in order, as the stream adds them."""
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    x = np.asarray(values, dtype=np.float32).reshape(len(ts_ms), -1)
    f = x.shape[1]
    snapshots = np.empty(0, np.intp) if snapshots is None else np.asarray(snapshots, np.intp)
    taken = empty_records(len(snapshots), f)
    if not len(ts_ms):
        return SensorBins(bin_ms, np.empty(0, np.int64), empty_records(0, f)), taken
    b = ts_ms // bin_ms
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(b)]))
    rank = np.arange(len(b)) - starts[run]
    state = empty_records(len(starts), f)
    # Vectorised across bins: step r adds every bin's r-th event, so each bin still sees its
    # events one by one and in order, as the Lua script does.
    order = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[order], np.arange(rank.max() + 2))
    snap_rank = rank[snapshots]
    for r in range(rank.max() + 1):
        rows = order[bounds[r]:bounds[r + 1]]
        runs = run[rows]
        view = state[runs]
        update(view, x[rows])
        state[runs] = view
        at = np.flatnonzero(snap_rank == r)
        if len(at):
            taken[at] = state[run[snapshots[at]]]
    return SensorBins(bin_ms, b[starts], state), taken


def bin_events(ts_ms: np.ndarray, values: np.ndarray, end_ms: int, length_ms: int, steps: int) -> BinStats:
    """The window of ``steps`` bins of ``length_ms / steps`` ending at the bin of ``end_ms``, from
    the events up to ``end_ms`` (``ts_ms`` sorted)."""
    bin_ms = bin_width(length_ms, steps)
    hi = int(np.searchsorted(ts_ms, end_ms, side="right"))
    bins, _ = accumulate(ts_ms[:hi], np.asarray(values)[:hi], bin_ms)
    return bins.window(int(end_ms) // bin_ms, steps, end_ms=int(end_ms))


def bin_width(length_ms: int, steps: int) -> int:
    """A bin's width: ``length / steps`` in whole milliseconds (rounded down; the window is then
    ``steps`` such bins, a few milliseconds shorter than asked at most)."""
    bin_ms = int(length_ms) // int(steps)
    if bin_ms < 1:
        raise ValueError(f"a window of {length_ms} ms cannot hold {steps} bins of at least a millisecond")
    return bin_ms
