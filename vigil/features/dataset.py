"""Cut windows from event tables: the same windows for training, evaluation and the stream.

A window ends at an event (as on the stream, where a new event makes a sensor's window ready).
``last``: one window per sensor, at its last event; ``every=K``: at every K-th event (counted
from the sensor's last, so the last event is always included). A window is kept only when it holds
at least ``min_events`` events. Its label is the label of the event it ends at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from vigil.events.frame import SensorSeries
from vigil.features.normalizer import FleetStats
from vigil.features.window import WindowSpec, featurize_windows


@dataclass
class WindowSet:
    x: np.ndarray  # [n, steps, channels] float32
    sensor_id: np.ndarray  # [n] str
    end_ms: np.ndarray  # [n] int64
    n_events: np.ndarray  # [n] int64
    label: np.ndarray  # [n] float64, NaN = unlabelled

    def __len__(self) -> int:
        return len(self.end_ms)

    def subset(self, mask: np.ndarray) -> "WindowSet":
        return WindowSet(self.x[mask], self.sensor_id[mask], self.end_ms[mask], self.n_events[mask], self.label[mask])


def window_end_indices(n_events: int, every: int | None) -> np.ndarray:
    """Indices of the events windows end at: the last one (``every=None``) or every K-th."""
    if n_events == 0:
        return np.empty(0, dtype=np.intp)
    if every is None:
        return np.array([n_events - 1])
    return np.arange(n_events - 1, -1, -every)[::-1]


def build_windows(
    series: Iterable[SensorSeries],
    spec: WindowSpec,
    stats: FleetStats,
    every: int | None = None,
    min_events: int = 1,
) -> WindowSet:
    xs, sids, ends, counts, labels = [], [], [], [], []
    for s in series:
        idx = window_end_indices(len(s.ts_ms), every)
        end_ms = s.ts_ms[idx]
        start_idx = np.searchsorted(s.ts_ms, end_ms - spec.length_ms, side="right")
        n = idx + 1 - start_idx
        keep = n >= min_events
        if not keep.any():
            continue
        idx, end_ms, n = idx[keep], end_ms[keep], n[keep]
        xs.append(featurize_windows(s.ts_ms, s.values, end_ms, spec, stats, stats.baseline_for(s.sensor_id)))
        sids.append(np.full(len(idx), s.sensor_id, dtype=object))
        ends.append(end_ms)
        counts.append(n)
        labels.append(s.labels[idx])
    if not xs:
        return WindowSet(np.empty((0, spec.steps, spec.channels), np.float32), np.empty(0, object),
                         np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    return WindowSet(np.concatenate(xs), np.concatenate(sids), np.concatenate(ends),
                     np.concatenate(counts), np.concatenate(labels))
