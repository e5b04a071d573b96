"""Explanations: which features and which part of a window drove its score.

The scorer returns, beside each score, the window's squared departure from the normal training
windows per time bin and channel, in their standard deviations (``contributions``, see
``EncoderLatentAutoencoder.contributions``). A feature's share is the part of the window's total
that falls on its channels (the count channel is ``event_rate``); the span is the run of bins
around the largest contribution that stay above half of it, so a level shift since its onset
gives onset → end and a spike one bin.
"""

from __future__ import annotations

import numpy as np

from vigil.events.outputs import Explanation, FeatureShare

EVENT_RATE = "event_rate"
TOP_FEATURES = 3
SPAN_LEVEL = 0.5  # of the peak bin's (smoothed) contribution


def explain(
    contributions: np.ndarray,
    channel_features: np.ndarray,
    feature_names: list[str] | tuple[str, ...],
    window_end_ms: np.ndarray,
    length_ms: int,
    top: int = TOP_FEATURES,
) -> list[Explanation]:
    """One explanation per window of ``contributions`` (``[n, steps, channels]``)."""
    n, steps, _ = contributions.shape
    names = [*feature_names, EVENT_RATE]
    # Channel → feature matrix (the count channel, -1, is the last "feature").
    owner = np.where(channel_features < 0, len(feature_names), channel_features)
    to_feature = np.zeros((len(owner), len(names)), np.float32)
    to_feature[np.arange(len(owner)), owner] = 1.0
    per_feature = contributions.sum(axis=1) @ to_feature  # [n, features + 1]
    shares = per_feature / np.maximum(per_feature.sum(axis=1, keepdims=True), 1e-12)
    per_step = contributions.sum(axis=2)
    kernel = np.ones(3) / 3
    bin_ms = length_ms / steps
    out = []
    for i in range(n):
        smooth = np.convolve(per_step[i], kernel, mode="same")
        peak = int(np.argmax(smooth))
        lo, hi = _run_around(smooth >= SPAN_LEVEL * smooth[peak], peak)
        start = int(window_end_ms[i]) - length_ms
        order = np.argsort(-shares[i])[:top]
        out.append(Explanation(
            features=[FeatureShare(feature=names[j], share=round(float(shares[i, j]), 4)) for j in order],
            span_start=int(start + lo * bin_ms), span_end=int(start + (hi + 1) * bin_ms)))
    return out


def _run_around(mask: np.ndarray, at: int) -> tuple[int, int]:
    """The first and last index of the run of True in ``mask`` that contains ``at``."""
    lo, hi = at, at
    while lo > 0 and mask[lo - 1]:
        lo -= 1
    while hi < len(mask) - 1 and mask[hi + 1]:
        hi += 1
    return lo, hi
