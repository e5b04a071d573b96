"""Explanations: which features and which part of a window drove its score.

The scorer returns, beside each score, the window's squared departure from the normal training
windows per time bin and channel, in their standard deviations (``contributions``, see
``EncoderLatentAutoencoder.contributions``). A feature's share is the part of the window's total
that falls on its channels (the count channel is ``event_rate``); the span is the run of bins
around the largest contribution that stay above half of it, so a level shift since its onset
gives onset → end and a spike one bin.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from vigil.durations import format_duration
from vigil.events.outputs import Explanation, FeatureShare
from vigil.features import FleetStats, channel_features
from vigil.features.heads import HEADS, HeadStats, horizons
from vigil.model.detector import DETECTOR_HEADS, SCORE_HEADS
from vigil.model.predictor import Scored

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
    # The whole batch at once: a 3-bin moving mean (zero beyond the edges, as np.convolve's "same"),
    # each window's peak bin and the run around it above SPAN_LEVEL of the peak.
    padded = np.pad(per_step, ((0, 0), (1, 1)))
    smooth = (padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]) / 3
    peak = np.argmax(smooth, axis=1)
    below = smooth < SPAN_LEVEL * smooth[np.arange(n), peak][:, None]
    at = np.arange(steps)
    lo = np.where(below & (at < peak[:, None]), at, -1).max(axis=1) + 1
    hi = np.where(below & (at > peak[:, None]), at, steps).min(axis=1) - 1
    start = window_end_ms.astype(np.int64) - length_ms
    span_start = (start + lo * (length_ms / steps)).astype(np.int64).tolist()
    span_end = (start + (hi + 1) * (length_ms / steps)).astype(np.int64).tolist()
    order = np.argsort(-shares, axis=1)[:, :top]
    top_shares = np.round(np.take_along_axis(shares, order, axis=1).astype(np.float64), 4).tolist()
    # Built without validation (model_construct): every field is computed here, of the right type.
    return [Explanation.model_construct(
        features=[FeatureShare.model_construct(feature=names[j], share=v) for j, v in zip(rows, values)],
        span_start=first, span_end=last)
        for rows, values, first, last in zip(order.tolist(), top_shares, span_start, span_end)]


def _run_around(mask: np.ndarray, at: int) -> tuple[int, int]:
    """The first and last index of the run of True in ``mask`` that contains ``at``."""
    lo, hi = at, at
    while lo > 0 and mask[lo - 1]:
        lo -= 1
    while hi < len(mask) - 1 and mask[hi + 1]:
        hi += 1
    return lo, hi


def explain_scored(scored: Scored, heads: HeadStats | None, spec, stats: FleetStats,
                   feature_names: list[str] | tuple[str, ...], window_end_ms: np.ndarray) -> list[Explanation] | None:
    """One explanation per scored window, from the head with the largest calibrated value: the
    autoencoder's explains by its contributions (:func:`explain`), a statistic head by what it
    measured, in words. None for a scorer that cannot explain (no heads, no contributions)."""
    def by_contributions(rows: np.ndarray) -> dict[int, Explanation]:
        if scored.contributions is None or not len(rows):
            return {}
        why = explain(scored.contributions[rows], channel_features(spec), feature_names, window_end_ms[rows],
                      spec.length_ms)
        return dict(zip(rows.tolist(), why))

    if scored.heads is None or heads is None:
        found = by_contributions(np.arange(len(scored.scores)))
        return [found[i] for i in range(len(scored.scores))] if found else None
    # The head with the largest value explains the window, also where the pooled ``joint`` scored it.
    winner = np.argmax(scored.heads[:, :len(DETECTOR_HEADS)], axis=1)
    # Only the windows the autoencoder explains need their contributions read.
    learnt = by_contributions(np.flatnonzero(winner == DETECTOR_HEADS.index("autoencoder")))
    fleet_units = (heads.recent_mean - stats.mean) / stats.std
    out = []
    for i, k in enumerate(winner):
        head, end = DETECTOR_HEADS[k], int(window_end_ms[i])
        if head == "autoencoder":
            base = learnt.get(i) or Explanation(features=[], span_start=end - spec.length_ms, span_end=end)
            top = base.features[0].feature if base.features else "the window"
            out.append(base.model_copy(update={"head": head, "text": (
                f"the window departs from normal windows as the autoencoder learnt them, most in {top}")}))
        elif head == "fleet":
            j = int(np.argmax(np.abs(fleet_units[i])))
            bins = horizons(spec.steps)[-1]
            out.append(Explanation(
                features=[FeatureShare(feature=feature_names[j], share=1.0)],
                span_start=end - bins * spec.bin_ms, span_end=end, head=head,
                text=(f"{feature_names[j]} sits {fleet_units[i, j]:+.1f} healthy-fleet standard deviations from the "
                      f"fleet's mean over the last {_span(bins, spec)} (mean {heads.recent_mean[i, j]:.4g})")))
        else:
            out.append(_head_explanation(heads, i, HEADS.index(head), spec, feature_names, end))
    return out


def _head_explanation(heads: HeadStats, i: int, k: int, spec, names, end: int) -> Explanation:
    head, bins = HEADS[k], max(int(heads.horizon[i, k]), 1)
    before, after, j = float(heads.before[i, k]), float(heads.after[i, k]), int(heads.feature[i, k])
    over = f"over the last {_span(bins, spec)}"
    if head == "corr":
        iu, ju = np.triu_indices(len(names))
        a, b = names[iu[j]], names[ju[j]]
        shares = [FeatureShare(feature=b, share=0.5), FeatureShare(feature=a, share=0.5)]
        if abs(after) < abs(before):
            text = f"{b} stopped following {a}: correlation {before:.2f} → {after:.2f} {over}"
        else:
            text = f"{b} and {a} moved together unlike before: correlation {before:.2f} → {after:.2f} {over}"
    else:
        name = names[j]
        shares = [FeatureShare(feature=name, share=1.0)]
        text = {
            "shift": f"{name} moved from {before:.4g} to {after:.4g} (mean) {over}",
            "spread": (f"{name} {'is stuck' if after < before / 5 else 'varies more' if after > before else 'varies less'}"
                       f": spread within bins {before:.3g} → {after:.3g} {over}"),
            "extreme": (f"{name} spiked: its excursions from each bin's mean went from {before:.1f} to {after:.1f} "
                        f"standard deviations {over}"),
            "profile": f"{name} left its usual pattern: bin-to-bin swings {before:.3g} → {after:.3g} {over}",
            "reference": f"{name} left the sensor's healthy reference: mean {before:.4g} → {after:.4g} {over}",
        }[head]
    return Explanation(features=shares, span_start=end - bins * spec.bin_ms, span_end=end, head=head, text=text)


def _span(bins: int, spec) -> str:
    return format_duration(timedelta(milliseconds=bins * spec.bin_ms))


def head_values(scored: Scored) -> list[dict[str, float] | None]:
    """Each window's calibrated heads by name (for its score record); None without heads."""
    if scored.heads is None:
        return [None] * len(scored.scores)
    return [{name: round(float(v), 4) for name, v in zip(SCORE_HEADS, row)} for row in scored.heads]
