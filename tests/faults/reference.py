"""What every sensor's buffer must hold, computed from the produced events alone.

Independent of the buffer's code: each sensor's events with a timestamp in ``(newest - window,
newest]``, in produce order among equal timestamps, values as float32. Comparing this with what
Redis holds shows an event lost (missing) or applied twice (extra) after any fault.
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


def expected_windows(frame: pd.DataFrame, features: list[str], window_ms: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """sensor → (timestamps ms, float32 values ``[n, F]``), from the JSON values that were produced."""
    by_sensor: dict[str, list[tuple[int, list[float]]]] = defaultdict(list)
    for raw in frame_values(frame):  # the exact bytes produce_frame sends
        event = json.loads(raw)
        by_sensor[str(event["sensor_id"])].append((int(event["timestamp"]), [event[f] for f in features]))
    out = {}
    for sensor_id, rows in by_sensor.items():
        ts = np.array([t for t, _ in rows], dtype=np.int64)
        values = np.array([v for _, v in rows], dtype=np.float32).reshape(len(rows), len(features))
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        keep = ts > ts.max() - window_ms
        out[sensor_id] = (ts[keep], values[keep])
    return out


def buffer_mismatches(cfg: VigilSettings, frame: pd.DataFrame) -> dict[str, str]:
    """sensor → what differs between its buffer in Redis and the reference (empty: all equal)."""
    layout = BufferLayout.from_settings(cfg)
    expected = expected_windows(frame, list(cfg.features), layout.window_ms)
    client = connect(cfg)
    try:
        buffer = RollingBuffer(client, layout, cfg.topics.events)
        sensors = sorted(expected)
        states = buffer.states(sensors)
        found = {s.sensor_id: w for s, w in zip([s for s in states if s], buffer.read([s for s in states if s]))}
    finally:
        client.close()
    problems = {}
    for sensor_id in sensors:
        ts, values = expected[sensor_id]
        window = found.get(sensor_id)
        if window is None:
            problems[sensor_id] = f"no buffer (expected {len(ts)} events)"
        elif len(window.ts_ms) != len(ts):
            problems[sensor_id] = f"{len(window.ts_ms)} events buffered, expected {len(ts)}"
        elif not np.array_equal(window.ts_ms, ts):
            problems[sensor_id] = "timestamps differ"
        elif not np.array_equal(window.values.astype(np.float32), values):
            problems[sensor_id] = "values differ"
    return problems
