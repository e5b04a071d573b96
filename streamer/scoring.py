"""Stage 4 (docs/architecture.md): ready sensors → bins read from Redis in one pipeline → one tensor → one model call.

Featurisation is :func:`vigil.features.channels_many`, the function training and ``vigil
evaluate`` use, on the same per-bin records (a file's events accumulate into them by the same
arithmetic), so an online score equals the offline one. A model with coarser bins than the
buffer's gets them merged (``WindowBatch.windows``).
Each window's explanation (:mod:`vigil.model.explain`) comes out of the same model call.
"""

from __future__ import annotations

import numpy as np

from vigil.alerts import ScoredWindow
from vigil.buffer import RollingBuffer, SensorState
from vigil.buffer.bins import BinStats
from vigil.buffer.rolling import WindowBatch
from vigil.features import FleetStats, WindowSpec, channels_many
from vigil.features.heads import head_statistics
from vigil.model.explain import explain_scored, head_values
from streamer.model_watch import ActiveModel



def score_sensors(buffer: RollingBuffer, model: ActiveModel, states: list[SensorState], min_events: int) -> list[ScoredWindow]:
    """Score each sensor's window ending at its newest event; sensors with too few events are skipped."""
    spec, stats = model.loaded.spec, model.loaded.stats
    batch = buffer.read_batch(states)
    keep, n, bins, x, baselines = batch_tensor(batch, spec, stats, min_events)
    if not len(keep):
        return []
    heads = head_statistics(bins, baselines)
    scored = model.loaded.combine(model.predict(x), heads)
    ends = batch.newest_ms[keep]
    history = ends - bins.first_event_bin_ms()
    picked = [(batch.sensor_ids[i], batch.metas[i], int(end), int(n[i]), int(h))
              for i, end, h in zip(keep, ends, history)]
    explanations = explain_scored(scored, heads, spec, stats, model.loaded.meta.features, ends) or [None] * len(picked)
    per_head = head_values(scored)
    return [
        ScoredWindow(sensor_id=sensor_id, window_start=end - spec.length_ms, window_end=end, n_events=count,
                     score=float(s), history_ms=h, meta=meta, explanation=e, heads=v)
        for (sensor_id, meta, end, count, h), s, e, v in zip(picked, scored.scores, explanations, per_head)
    ]



def batch_tensor(batch: WindowBatch, spec: WindowSpec, stats: FleetStats,
                 min_events: int) -> tuple[np.ndarray, np.ndarray, BinStats, np.ndarray, list]:
    """The model's input for the batch's windows that hold ``min_events`` events: their rows in
    the batch, every window's event count, their bins, their ``[k, steps, channels]`` tensor and
    their sensors' saved references (the heads read them too)."""
    bins = batch.windows(spec.bin_ms, spec.steps)
    n = bins.count.sum(axis=1).astype(np.int64)
    keep = np.flatnonzero(n >= min_events)
    bins = bins.take(keep)
    baselines = [stats.baseline_for(batch.sensor_ids[i]) for i in keep]
    return keep, n, bins, channels_many(bins, spec, stats, baselines), baselines
