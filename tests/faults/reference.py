"""What every sensor's buffer must hold, computed from the produced events alone.

Independent of the buffer's code (no ``vigil.buffer.bins``): each sensor's events grouped by
pandas into hourly bins of the window (the ``steps`` bins up to the newest event's), with their
count, minimum, maximum, mean and variance. Comparing these with what Redis holds shows an event
lost (a count short) or applied twice (a count over) after any fault; min and max must match
exactly, mean and variance to float32 rounding.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pandas as pd
from vigil.buffer import BufferLayout, RollingBuffer
from vigil.kafka.produce import frame_values
from vigil.redis_client import connect
from vigil.settings import VigilSettings


def expected_bins(frame: pd.DataFrame, features: list[str], bin_ms: int, steps: int) -> dict[str, pd.DataFrame]:
    """sensor → per-bin ``n``, and per feature ``min``/``max``/``mean``/``var`` (population),
    indexed by bin number, from the JSON values that were produced."""
    rows = []
    for raw in frame_values(frame):  # the exact bytes produce_frame sends
        event = json.loads(raw)
        rows.append((str(event["sensor_id"]), int(event["timestamp"]), *[event[f] for f in features]))
    events = pd.DataFrame(rows, columns=["sensor_id", "ts", *features])
    events[features] = events[features].astype(np.float32).astype(np.float64)
    events["bin"] = events["ts"] // bin_ms
    top = events.groupby("sensor_id")["bin"].transform("max")
    events = events[events["bin"] > top - steps]
    grouped = events.groupby(["sensor_id", "bin"])
    out = grouped.size().rename("n").to_frame()
    for f in features:
        stats = grouped[f].agg(["min", "max", "mean", lambda v: float(np.var(v))])
        stats.columns = [f"{f}:min", f"{f}:max", f"{f}:mean", f"{f}:var"]
        out = out.join(stats)
    return {sensor_id: part.droplevel(0) for sensor_id, part in out.groupby(level=0)}


def buffer_mismatches(cfg: VigilSettings, frame: pd.DataFrame) -> dict[str, str]:
    """sensor → what differs between its buffer in Redis and the reference (empty: all equal)."""
    layout = BufferLayout.from_settings(cfg)
    features = list(cfg.features)
    expected = expected_bins(frame, features, layout.bin_ms, layout.steps)
    client = connect(cfg)
    try:
        buffer = RollingBuffer(client, layout, cfg.topics.events)
        sensors = sorted(expected)
        states = buffer.state_many(sensors)
        found = {s.sensor_id: w for s, w in zip([s for s in states if s], buffer.read_many([s for s in states if s]))}
    finally:
        client.close()
    problems = {}
    for sensor_id in sensors:
        want = expected[sensor_id]
        window = found.get(sensor_id)
        if window is None:
            problems[sensor_id] = f"no buffer (expected {int(want['n'].sum())} events)"
            continue
        records = window.bins.records
        if window.bins.index.tolist() != want.index.tolist():
            problems[sensor_id] = f"bins {window.bins.index.tolist()} differ from {want.index.tolist()}"
        elif records["n"].tolist() != want["n"].tolist():
            problems[sensor_id] = f"{int(records['n'].sum())} events buffered, expected {int(want['n'].sum())}"
        else:
            for j, f in enumerate(features):
                low, high = records["min"][:, j].astype(np.float64), records["max"][:, j].astype(np.float64)
                mean = low + records["above"][:, j]
                var = records["co"][:, j * len(features) - j * (j - 1) // 2] / records["n"]
                scale = np.maximum(high - low, 1e-6 * np.maximum(np.abs(high), 1.0))
                if not (np.array_equal(low, want[f"{f}:min"]) and np.array_equal(high, want[f"{f}:max"])):
                    problems[sensor_id] = f"{f}: min or max differ"
                elif not np.allclose(mean, want[f"{f}:mean"], rtol=0, atol=1e-5 * scale.max()):
                    problems[sensor_id] = f"{f}: means differ"
                elif not np.allclose(var, want[f"{f}:var"], rtol=1e-3, atol=1e-6 * scale.max() ** 2):
                    problems[sensor_id] = f"{f}: variances differ"
    return problems
