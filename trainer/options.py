"""The trainer job's options, with their defaults: the one place ``vigil train --from-redis``
reads them from (kept apart from :mod:`trainer.job`, which loads TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

from vigil.features import WindowSpec
from vigil.model.config import TrainConfig


@dataclass(frozen=True)
class JobOptions:
    spec: WindowSpec
    config: TrainConfig
    min_events: int
    seed: int = 0
    max_sensors: int = 2000
    keep_labelled: bool = False  # train on sensors whose latest label is 1 too
    keep_alerted: bool = False  # train on sensors that alerted inside their window too
    holdout_fraction: float = 0.2
    pr_auc_margin: float = 0.02
    fpr_margin: float = 0.01
    keep: int = 10  # versions retained
    repeat_s: float | None = None  # None: one run
