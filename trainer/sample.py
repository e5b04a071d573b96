"""Training data from the live buffers: a reproducible sample of the streamer's sensors in Redis.

Sensors are found with SCAN (in batches, never all keys at once) and kept by the smallest
``sha256(seed, sensor_id)``: the same seed picks the same sensors whatever order SCAN returns,
and memory holds at most ``max_sensors`` ids. Each kept sensor's current window becomes one series.

Who counts as normal (both rules configurable): the sensor's latest label is not 1 (when labels
flow with the events), and it raised no alert inside its window. Labelled anomalous sensors are
returned apart, for validation; sensors excluded by the alert rule are not used at all.

The buffer holds per-bin statistics, not events (:mod:`vigil.buffer.bins`): each series is a
:class:`~vigil.features.dataset.BinnedSeries`, and training windows end at its bins.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field

import numpy as np

from vigil.buffer import meta as sensor_meta
from vigil.buffer import RollingBuffer
from vigil.events.frame import EventTable
from vigil.features.dataset import BinnedSeries


@dataclass
class BufferSample:
    normal: EventTable
    anomalous: EventTable  # latest label 1: validation only
    scanned: int = 0
    excluded: dict[str, int] = field(default_factory=dict)  # rule → sensors it excluded


def sample_buffers(
    buffer: RollingBuffer,
    features: tuple[str, ...],
    label_column: str | None,
    max_sensors: int,
    seed: int = 0,
    exclude_labelled: bool = True,
    exclude_alerted: bool = True,
    min_events: int = 1,
    scan_count: int = 1000,
    read_batch: int = 256,
) -> BufferSample:
    ids, scanned = _pick(buffer, max_sensors, seed, scan_count)
    normal, anomalous = {}, {}
    excluded = {"latest_label_1": 0, "alerted_in_window": 0, "too_few_events": 0}
    for start in range(0, len(ids), read_batch):
        states = [s for s in buffer.state_many(ids[start : start + read_batch]) if s is not None]
        for window in buffer.read_many(states):
            if window.n_events < min_events:
                excluded["too_few_events"] += 1
                continue
            label = window.meta.get(sensor_meta.LABEL)
            alerted = bool(window.meta.get(sensor_meta.ALERT_ID)) or (
                sensor_meta.int_field(window.meta, sensor_meta.ALERT_END) > window.newest_ms - buffer.layout.window_ms)
            series = BinnedSeries(window.sensor_id, window.bins, window.newest_ms, float(label) if label else np.nan)
            if exclude_labelled and label == "1":
                excluded["latest_label_1"] += 1
                anomalous[window.sensor_id] = series
            elif exclude_alerted and alerted:
                excluded["alerted_in_window"] += 1
            else:
                normal[window.sensor_id] = series
    return BufferSample(EventTable(normal, tuple(features), label_column),
                        EventTable(anomalous, tuple(features), label_column), scanned, excluded)


def _pick(buffer: RollingBuffer, max_sensors: int, seed: int, scan_count: int) -> tuple[list[str], int]:
    """Up to ``max_sensors`` sensor ids, chosen by hash rank (independent of SCAN order)."""
    prefix, suffix = f"{buffer.layout.prefix}:{{s:", "}:meta"
    heap: list[tuple[int, str]] = []  # max-heap by negated rank: the worst kept id on top
    scanned = 0
    for key in buffer.client.scan_iter(match=f"{prefix}*{suffix}", count=scan_count):
        key = sensor_meta.text(key)
        sensor_id = key[len(prefix) : -len(suffix)]
        scanned += 1
        rank = int.from_bytes(hashlib.sha256(f"{seed}\x00{sensor_id}".encode()).digest()[:8], "big")
        if len(heap) < max_sensors:
            heapq.heappush(heap, (-rank, sensor_id))
        elif -heap[0][0] > rank:
            heapq.heapreplace(heap, (-rank, sensor_id))
    return sorted(sensor_id for _, sensor_id in heap), scanned
