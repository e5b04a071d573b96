"""Choosing the alert threshold on validation scores, and the metrics reported with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, precision_recall_fscore_support, roc_auc_score

from vigil.model.config import DEFAULT_QUANTILE



@dataclass(frozen=True)
class Threshold:
    value: float
    method: str  # "f1_optimal" (labelled validation windows) or "quantile" (normal scores only)
    detail: dict

    def to_dict(self) -> dict:
        return asdict(self)


def choose_threshold(scores: np.ndarray, labels: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> Threshold:
    """F1-optimal when the validation windows hold both labels; else a high quantile of the scores.

    ``labels`` may hold NaN for unlabelled windows; those count as normal for the quantile.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        raise ValueError("no validation scores to choose a threshold from")
    known = np.isfinite(labels)
    y = labels[known].astype(int)
    if known.any() and 0 < y.sum() < len(y):
        precision, recall, cuts = precision_recall_curve(y, scores[known])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        best = int(np.argmax(f1))
        return Threshold(float(cuts[best]), "f1_optimal",
                         {"f1": float(f1[best]), "precision": float(precision[best]), "recall": float(recall[best]),
                          "n_windows": int(known.sum()), "n_positive": int(y.sum())})
    normal = scores[~known | (labels == 0)]
    normal = normal if len(normal) else scores
    return Threshold(float(np.quantile(normal, quantile)), "quantile",
                     {"quantile": quantile, "n_windows": int(len(normal))})


def window_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """roc_auc, pr_auc, f1, precision, recall at ``threshold``, n_windows, n_positive (labelled only)."""
    known = np.isfinite(labels)
    y, s = labels[known].astype(int), np.asarray(scores, dtype=np.float64)[known]
    out: dict = {"threshold": float(threshold), "n_windows": int(len(scores)), "n_positive": int(y.sum())}
    both = 0 < y.sum() < len(y)
    out["roc_auc"] = float(roc_auc_score(y, s)) if both else None
    out["pr_auc"] = float(average_precision_score(y, s)) if both else None
    if len(y):
        p, r, f, _ = precision_recall_fscore_support(y, (s >= threshold).astype(int), average="binary", zero_division=0)
        out.update(f1=float(f), precision=float(p), recall=float(r))
    else:
        out.update(f1=None, precision=None, recall=None)
    out["alert_rate"] = float((np.asarray(scores) >= threshold).mean()) if len(scores) else None
    normal = y == 0
    out["false_positive_rate"] = float((s[normal] >= threshold).mean()) if normal.any() else None
    return out
