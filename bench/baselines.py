"""The baselines bench/quality.py measures Vigil against, behind one small protocol (fit, score).

* ``isolation_forest``: scikit-learn's IsolationForest on per-channel window summaries;
* ``lstm_seq_ae``: a sequence-reconstruction LSTM autoencoder (per-window MSE);
* ``naive_latent_ae``: the originating question's objective as written (``objective="naive"``),
  the autoencoder alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import keras
import numpy as np
from keras import layers
from sklearn.ensemble import IsolationForest

from trainer.fit import TrainingSet, fit_model
from vigil.features.dataset import WindowSet
from vigil.model.detector import DETECTOR_HEADS
from vigil.model.predictor import BatchPredictor, Scored
from vigil.model.training import TrainConfig, make_scorer, seed_everything, train_autoencoder


class Model(Protocol):
    name: str

    def fit(self, data: TrainingSet) -> None:
        """Fit on the training set's normal windows (``data.normal``)."""

    def score(self, windows: WindowSet) -> Scored:
        """Anomaly score per window (higher = more anomalous), and contributions where it explains."""


@dataclass
class Vigil:
    """Vigil's detector as ``vigil train`` fits it (``trainer.fit.fit_model``); ``heads`` keeps only
    these heads in the score, the largest of them (the ablation; by default the detector's own score)."""

    name: str
    config: TrainConfig
    heads: tuple[str, ...] = DETECTOR_HEADS
    _fitted: tuple | None = field(default=None, repr=False)

    def fit(self, data: TrainingSet) -> None:
        model, detector, _, _ = fit_model(data, self.config)
        self._fitted = (make_scorer(model), detector, data.stats)

    def score(self, windows: WindowSet) -> Scored:
        scorer, detector, stats = self._fitted
        ae = BatchPredictor(scorer)(windows.x)
        scores, calibrated = detector.score(ae.scores, windows.head_stats, stats)
        if self.heads != DETECTOR_HEADS:
            scores = calibrated[:, [DETECTOR_HEADS.index(h) for h in self.heads]].max(axis=1)
        return Scored(scores, ae.contributions, calibrated)


@dataclass
class LatentAutoencoder:
    """The library's encoder-latent autoencoder alone, with a given configuration."""

    name: str
    config: TrainConfig
    _scorer: keras.Model | None = field(default=None, repr=False)

    def fit(self, data: TrainingSet) -> None:
        self._scorer = make_scorer(train_autoencoder(data.normal.x, self.config))

    def score(self, windows: WindowSet) -> Scored:
        return BatchPredictor(self._scorer)(windows.x)


def window_summaries(x: np.ndarray) -> np.ndarray:
    """Per channel: mean, std, min, max, and last bin minus first bin; flattened."""
    change = x[:, -1, :] - x[:, 0, :]
    stats = (x.mean(axis=1), x.std(axis=1), x.min(axis=1), x.max(axis=1), change)
    return np.concatenate(stats, axis=1).astype(np.float64)


@dataclass
class IsolationForestSummary:
    """IsolationForest on :func:`window_summaries`; score = ``-score_samples``."""

    seed: int
    name: str = "isolation_forest"
    _forest: IsolationForest | None = field(default=None, repr=False)

    def fit(self, data: TrainingSet) -> None:
        self._forest = IsolationForest(random_state=self.seed).fit(window_summaries(data.normal.x))

    def score(self, windows: WindowSet) -> Scored:
        return Scored(-self._forest.score_samples(window_summaries(windows.x)), None)


@dataclass
class SequenceLstmAutoencoder:
    """LSTM(100) → RepeatVector → LSTM(100, sequences) → TimeDistributed(Dense): per-window MSE."""

    epochs: int
    seed: int
    units: int = 100
    batch_size: int = TrainConfig.batch_size
    patience: int = TrainConfig.patience
    learning_rate: float = TrainConfig.learning_rate
    name: str = "lstm_seq_ae"
    _model: keras.Model | None = field(default=None, repr=False)

    def fit(self, data: TrainingSet) -> None:
        seed_everything(self.seed)
        x = np.asarray(data.normal.x, np.float32)
        x = x[np.random.default_rng(self.seed).permutation(len(x))]  # random 10% validation tail
        _, steps, channels = x.shape
        self._model = keras.Sequential([
            keras.Input((steps, channels)),
            layers.LSTM(self.units),
            layers.RepeatVector(steps),
            layers.LSTM(self.units, return_sequences=True),
            layers.TimeDistributed(layers.Dense(channels)),
        ], name=self.name)
        self._model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse")
        stop = keras.callbacks.EarlyStopping(patience=self.patience, restore_best_weights=True)
        self._model.fit(x, x, epochs=self.epochs, batch_size=self.batch_size, validation_split=0.1,
                        callbacks=[stop], shuffle=True, verbose=0)

    def score(self, windows: WindowSet) -> Scored:
        x = np.asarray(windows.x, np.float32)
        x_hat = self._model.predict(x, batch_size=512, verbose=0)
        return Scored(np.mean(np.square(x - x_hat), axis=(1, 2)).astype(np.float64), None)


BASELINE_NAMES = ("isolation_forest", "lstm_seq_ae", "naive_latent_ae")


def baselines(epochs: int, dense_epochs: int, seed: int) -> list[Model]:
    naive = TrainConfig(objective="naive", epochs=epochs, dense_epochs=dense_epochs, seed=seed)
    return [IsolationForestSummary(seed), SequenceLstmAutoencoder(epochs, seed), LatentAutoencoder("naive_latent_ae", naive)]
