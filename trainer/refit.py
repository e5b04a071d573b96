"""One trainer run: fit a candidate, gate it against the current model, promote or reject it.

The candidate comes from :func:`trainer.fit.fit_and_register` (the one training path, also behind
``vigil train --events``), saved but not promoted. A share of the sensors (``holdout_fraction``)
never reaches it: their last windows, plus any labelled anomalous sensors, are what the gate and
the drift report score with both models. Promotion is a compare-and-set of ``CURRENT`` against
the version the run started from, then announced on Redis so streamers swap at once.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from trainer.fit import fit_and_register, split_sensors
from trainer.gate import gate
from vigil.events.frame import EventTable
from vigil.features import WindowSpec
from vigil.features.dataset import build_windows
from vigil.logging import get_logger
from vigil.model.config import TrainConfig
from vigil.errors import VigilError
from vigil.registry import GATE_FILE, LoadedModel, ModelRegistry, PointerMoved

log = get_logger("trainer")


@dataclass
class RefitResult:
    version: str
    promoted: bool
    gate: dict
    drift: dict


def refit(
    normal: EventTable,
    anomalous: EventTable | None,
    spec: WindowSpec,
    config: TrainConfig,
    registry: ModelRegistry,
    min_events: int = 10,
    holdout_fraction: float = 0.2,
    pr_auc_margin: float = 0.02,
    fpr_margin: float = 0.01,
    source: dict | None = None,
    announce=None,
    before_save=None,
    alerts=None,
    score_every_ms: int = 0,
) -> RefitResult:
    parent = registry.current_version()
    fit_part, holdout = split_sensors(normal, holdout_fraction, config.seed + 1)
    fit_table = EventTable({s.sensor_id: s for s in fit_part}, normal.features, normal.label_column)
    candidate = fit_and_register(fit_table, spec, config, registry, min_events=min_events,
                                 source=source, promote=False, before_save=before_save, alerts=alerts,
                                 score_every_ms=score_every_ms)
    held = holdout + (list(anomalous) if anomalous is not None else [])
    new = registry.load(candidate.version)
    cand_scores, labels = _last_window_scores(new, held, min_events)
    if parent is None:
        verdict = {"rule": "none", "promote": True, "reason": "no current model: the first version is promoted"}
        cur_scores = None
    else:
        try:
            current = registry.load(parent)
        except VigilError as exc:  # e.g. an older featurisation this Vigil cannot score
            current, cur_scores = None, None
            verdict = {"rule": "none", "promote": True,
                       "reason": f"the current model cannot be scored by this Vigil ({exc}): the candidate replaces it"}
        if current is not None:
            cur_scores, _ = _last_window_scores(current, held, min_events)
            verdict = gate(cand_scores, new.threshold, cur_scores, current.threshold, labels, pr_auc_margin,
                           fpr_margin)
    verdict.update(parent=parent, holdout_sensors=len(holdout), anomalous_sensors=len(held) - len(holdout))
    promoted = False
    if verdict["promote"]:
        try:
            registry.promote(candidate.version, expected=parent)
            promoted = True
        except PointerMoved as exc:
            verdict.update(promote=False, reason=str(exc))
    verdict["status"] = "promoted" if promoted else "rejected"
    registry.write_file(candidate.version, GATE_FILE, json.dumps(verdict, indent=2).encode())
    drift = _drift(registry, candidate.version, cand_scores, cur_scores, labels)
    log.info("candidate " + verdict["status"], version=candidate.version, reason=verdict["reason"])
    if promoted and announce is not None:
        announce(candidate.version)
    return RefitResult(candidate.version, promoted, verdict, drift)


def _last_window_scores(model: LoadedModel, series: list, min_events: int) -> tuple[np.ndarray, np.ndarray]:
    windows = build_windows(series, model.spec, model.stats, every=None, min_events=min_events)
    return model.score(windows.x, windows.head_stats), windows.label


def _drift(registry: ModelRegistry, version: str, candidate, current, labels) -> dict:
    """Score distributions of recent normal windows under both models: drift.json and drift.png."""
    normal = np.asarray(labels) != 1
    quantiles = (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

    def summary(scores):
        if scores is None or not normal.any():
            return None
        s = np.asarray(scores)[normal]
        return {"n": int(len(s)), "mean": float(s.mean()), **{f"q{q:g}": float(np.quantile(s, q)) for q in quantiles}}

    report = {"windows": "last window of each held-out normal sensor", "candidate": summary(candidate),
              "current": summary(current)}
    registry.write_file(version, "drift.json", json.dumps(report, indent=2).encode())
    registry.write_file(version, "drift.png", _plot(candidate, current, normal))
    return report


def _plot(candidate, current, normal) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, scores in (("current", current), ("candidate", candidate)):
        if scores is not None and normal.any():
            ax.hist(np.asarray(scores)[normal], bins=40, alpha=0.5, label=name)
    ax.set_xlabel("anomaly score of recent normal windows")
    ax.set_ylabel("windows")
    ax.set_title("Score drift: current vs candidate model")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
