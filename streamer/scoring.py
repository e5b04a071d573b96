"""Stage 4 (docs/architecture.md): ready sensors → bins read from Redis in one pipeline → one tensor → one model call.

Featurisation is :func:`vigil.features.windows_channels`, the function training and ``vigil
evaluate`` use, on the same per-bin records (a file's events accumulate into them by the same
arithmetic), so an online score equals the offline one. A model with coarser bins than the
buffer's gets them merged (``SensorBins.window``).
Each window's explanation (:mod:`vigil.model.explain`) comes out of the same model call.
"""

from __future__ import annotations

import numpy as np

from vigil.alerts import ScoredWindow
from vigil.buffer import RollingBuffer, SensorState
from vigil.features import channel_features, windows_channels
from vigil.model.explain import explain
from streamer.model_watch import ActiveModel



def score_sensors(buffer: RollingBuffer, model: ActiveModel, states: list[SensorState], min_events: int) -> list[ScoredWindow]:
    """Score each sensor's window ending at its newest event; sensors with too few events are skipped."""
    spec, stats = model.loaded.spec, model.loaded.stats
    picked, windows = [], []
    for window in buffer.read(states):
        end = window.newest_ms
        bins = window.bins.window(end // spec.bin_ms, spec.steps, spec.bin_ms)
        n = int(bins.count.sum())
        if n < min_events:
            continue
        windows.append(bins)
        picked.append((window, end, n, end - bins.first_event_bin_ms()))
    if not picked:
        return []
    baselines = [stats.baseline_for(w.sensor_id) for w, _, _, _ in picked]
    scored = model.predict(windows_channels(windows, spec, stats, baselines))
    explanations = [None] * len(picked)
    if scored.contributions is not None:
        ends = np.array([end for _, end, _, _ in picked])
        explanations = explain(scored.contributions, channel_features(spec), model.loaded.meta.features, ends,
                               spec.length_ms)
    return [
        ScoredWindow(w.sensor_id, end - spec.length_ms, end, n, float(s), history, w.meta, e)
        for (w, end, n, history), s, e in zip(picked, scored.scores, explanations)
    ]
