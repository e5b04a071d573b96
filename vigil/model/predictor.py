"""``BatchPredictor``: score any number of windows through one compiled function.

Keras compiles ``predict_on_batch`` once per input shape (TensorFlow traces a ``tf.function``,
JAX jits). Batches are padded up to a power-of-two bucket (at least ``min_bucket``, at most
``max_batch``), so a stream of ragged batches reuses a handful of compiled shapes instead of
tracing for every new size; larger inputs go through in ``max_batch`` slices.

Buckets of ``xla_from`` windows or more (512 by default: full batches) go through a twin of the
scorer compiled with XLA, which Keras leaves off on a CPU-only TensorFlow. There the LSTM's steps
run as one fused loop instead of a graph loop of small kernels, and full batches (every event
scored, a backlog, a backtest) score faster. A cadence's small batches, called in the streamer's
loop, were slower with it on a busy 2-core host, so they keep the plain graph (bench/README.md, "XLA").
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import keras
import numpy as np

# Set once the process asks TensorFlow for deterministic kernels (a process that trains): TensorFlow
# offers no way back, and Keras then refuses XLA.
_xla_allowed = True
_twins: "weakref.WeakKeyDictionary[keras.Model, keras.Model]" = weakref.WeakKeyDictionary()


def keep_xla_off() -> None:
    """From now on this process scores without XLA (see ``vigil.model.training.seed_everything``)."""
    global _xla_allowed
    _xla_allowed = False


def xla_scoring() -> bool:
    """Whether full batches are scored with XLA here: on the TensorFlow and JAX backends (PyTorch's
    equivalent, ``torch.compile``, is not used), unless this process asked for deterministic kernels."""
    return _xla_allowed and keras.backend.backend() in ("tensorflow", "jax")


def xla_twin(scorer: keras.Model) -> keras.Model:
    """``scorer``'s graph and weights, compiled with XLA; one per scorer, so its compiled shapes are kept."""
    twin = _twins.get(scorer)
    if twin is None:
        twin = keras.Model(scorer.inputs, scorer.outputs)
        twin.compile(jit_compile=True)
        _twins[scorer] = twin
    return twin


@dataclass(frozen=True)
class Scored:
    scores: np.ndarray  # [n] float64
    contributions: np.ndarray | None  # [n, steps, channels] float32, from a scorer that explains
    heads: np.ndarray | None = None  # [n, len(SCORE_HEADS)] calibrated heads and joint (scores: their maximum)


class BatchPredictor:
    def __init__(self, scorer: keras.Model, max_batch: int = 512, min_bucket: int = 8, xla_from: int | None = 512):
        if max_batch < 1 or min_bucket < 1:
            raise ValueError("max_batch and min_bucket must be positive")
        self.scorer = scorer
        self.max_batch = max_batch
        self.min_bucket = min(min_bucket, max_batch)
        # Buckets of xla_from windows or more are scored by the XLA twin (None: never).
        self.xla_from = xla_from if xla_from is not None and xla_scoring() else None

    def model_for(self, size: int) -> keras.Model:
        """The scorer a bucket of ``size`` windows runs on: the XLA twin from ``xla_from`` on."""
        return xla_twin(self.scorer) if self.xla_from is not None and size >= self.xla_from else self.scorer

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
            out = self.model_for(size).predict_on_batch(part)
            score, contrib = (out[0], out[1]) if isinstance(out, (list, tuple)) else (out, None)
            scores[start : start + n] = np.asarray(keras.ops.convert_to_numpy(score)).reshape(-1)[:n]
            if contrib is not None and with_contributions:
                if contributions is None:
                    contributions = np.empty((len(x), *x.shape[1:]), np.float32)
                contributions[start : start + n] = keras.ops.convert_to_numpy(contrib)[:n]
        return Scored(scores, contributions)
