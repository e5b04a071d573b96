"""``BatchPredictor``: score any number of windows through one compiled function.

Keras compiles ``predict_on_batch`` once per input shape (TensorFlow traces a ``tf.function``,
JAX jits). Batches are padded up to a power-of-two bucket (at least ``min_bucket``, at most
``max_batch``), so a stream of ragged batches reuses a handful of compiled shapes instead of
tracing for every new size; larger inputs go through in ``max_batch`` slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class Scored:
    scores: np.ndarray  # [n] float64
    contributions: np.ndarray | None  # [n, steps, channels] float32, from a scorer that explains
    heads: np.ndarray | None = None  # [n, len(SCORE_HEADS)] calibrated heads and joint (scores: their maximum)


class BatchPredictor:
    def __init__(self, scorer: keras.Model, max_batch: int = 512, min_bucket: int = 8):
        if max_batch < 1 or min_bucket < 1:
            raise ValueError("max_batch and min_bucket must be positive")
        self.scorer = scorer
        self.max_batch = max_batch
        self.min_bucket = min(min_bucket, max_batch)

    def bucket(self, n: int) -> int:
        """The padded size a batch of ``n`` windows (``n <= max_batch``) runs at."""
        size = self.min_bucket
        while size < n:
            size *= 2
        return min(size, self.max_batch)

    def buckets(self) -> list[int]:
        sizes = [self.min_bucket]
        while sizes[-1] < self.max_batch:
            sizes.append(min(sizes[-1] * 2, self.max_batch))
        return sizes

    def warm_up(self, steps: int, channels: int) -> None:
        """Compile every bucket now, so no batch pays for it later."""
        for size in self.buckets():
            self(np.zeros((size, steps, channels), np.float32))

    def __call__(self, x: np.ndarray, with_contributions: bool = True) -> Scored:
        """Scores (and, from a scorer with two outputs, contributions) of every window of ``x``;
        ``with_contributions=False`` keeps the scores only (thresholds, gates: no [n, steps, channels] copy)."""
        x = np.asarray(x, dtype=np.float32)
        scores = np.empty(len(x), dtype=np.float64)
        contributions = None
        for start in range(0, len(x), self.max_batch):
            part = x[start : start + self.max_batch]
            n = len(part)
            size = self.bucket(n)
            if size > n:
                part = np.concatenate([part, np.zeros((size - n, *part.shape[1:]), np.float32)])
            out = self.scorer.predict_on_batch(part)
            score, contrib = (out[0], out[1]) if isinstance(out, (list, tuple)) else (out, None)
            scores[start : start + n] = np.asarray(keras.ops.convert_to_numpy(score)).reshape(-1)[:n]
            if contrib is not None and with_contributions:
                if contributions is None:
                    contributions = np.empty((len(x), *x.shape[1:]), np.float32)
                contributions[start : start + n] = keras.ops.convert_to_numpy(contrib)[:n]
        return Scored(scores, contributions)
