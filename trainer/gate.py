"""The validation gate: a candidate replaces the current model only if it is not worse.

Both models score the same held-out recent windows. With at least ``min_anomalous`` labelled
anomalous windows among them the gate compares PR-AUC (candidate >= current - ``pr_auc_margin``);
otherwise it compares the share of normal windows each model alerts on at its own threshold
(candidate <= current + ``fpr_margin``).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score


def gate(
    candidate: np.ndarray, candidate_threshold: float,
    current: np.ndarray, current_threshold: float,
    labels: np.ndarray, pr_auc_margin: float = 0.02, fpr_margin: float = 0.01, min_anomalous: int = 5,
) -> dict:
    labels = np.asarray(labels, dtype=np.float64)
    known = np.isfinite(labels)
    y = labels[known].astype(int)
    out: dict = {"n_windows": int(len(labels)), "n_anomalous": int(y.sum())}
    if min_anomalous <= y.sum() < len(y):  # a PR-AUC over one or two anomalies is mostly noise
        cand, cur = (float(average_precision_score(y, s[known])) for s in (candidate, current))
        out.update(rule="pr_auc", candidate=cand, current=cur, margin=pr_auc_margin,
                   promote=cand >= cur - pr_auc_margin)
    else:
        normal = labels != 1
        if not normal.any():
            return {**out, "rule": "none", "promote": False, "reason": "no normal held-out windows to compare on"}
        cand = float((candidate[normal] >= candidate_threshold).mean())
        cur = float((current[normal] >= current_threshold).mean())
        out.update(rule="false_positive_rate", candidate=cand, current=cur, margin=fpr_margin,
                   promote=cand <= cur + fpr_margin)
    verdict = "not worse than" if out["promote"] else "worse than"
    out["reason"] = (f"candidate {out['rule']} {out['candidate']:.4f} is {verdict} current "
                     f"{out['current']:.4f} (margin {out['margin']})")
    return out
