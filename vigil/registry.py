"""The model registry: versioned artifact directories and an atomic ``CURRENT`` pointer.

An artifact (docs/architecture.md, "Models") is a directory ``<root>/<version>/`` holding
``model.keras`` (loaded in safe mode) and ``meta.json``: feature list, window spec, normalisation
statistics, threshold and how it was chosen, validation metrics and the training data.
A version is written under a temporary name and renamed into place, so a reader never sees half
an artifact; ``CURRENT`` is replaced with ``os.replace``, so it always names a complete version.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import keras
import numpy as np
from pydantic import BaseModel

from vigil import __version__
from vigil.errors import VigilError
from vigil.features import FleetStats, WindowSpec
from vigil.features.heads import HeadStats
from vigil.model.autoencoder import EncoderLatentAutoencoder
from vigil.model.detector import Detector
from vigil.model.predictor import BatchPredictor, Scored
from vigil.model.training import make_scorer, score_windows

POINTER = "CURRENT"
MODEL_FILE = "model.keras"
META_FILE = "meta.json"
GATE_FILE = "gate.json"  # written after training: promoted or rejected, and why
LOCK_FILE = ".lock"


class ModelMeta(BaseModel):
    version: str
    created_at: str
    parent_version: str | None = None
    code_version: str = __version__
    keras_version: str = keras.__version__
    backend: str = keras.backend.backend()
    features: list[str]
    label_column: str | None
    window: dict[str, Any]
    fleet_stats: dict[str, Any]
    threshold: dict[str, Any]
    # The heads' calibration and healthy-fleet reference; absent in models of featurisation 4,
    # which are scored by their autoencoder alone until a new model is promoted.
    detector: dict[str, Any] | None = None
    metrics: dict[str, Any]
    training: dict[str, Any]


@dataclass
class LoadedModel:
    path: Path
    meta: ModelMeta
    model: EncoderLatentAutoencoder

    @property
    def version(self) -> str:
        return self.meta.version

    @cached_property
    def spec(self) -> WindowSpec:
        return WindowSpec.from_dict(self.meta.window)

    @cached_property
    def stats(self) -> FleetStats:
        return FleetStats.from_dict(self.meta.fleet_stats)

    @property
    def threshold(self) -> float:
        return float(self.meta.threshold["value"])

    @cached_property
    def detector(self) -> Detector | None:
        return Detector.from_dict(self.meta.detector) if self.meta.detector is not None else None

    @cached_property
    def scorer(self) -> keras.Model:
        return make_scorer(self.model)

    def combine(self, autoencoder: Scored, heads: HeadStats) -> Scored:
        """The window scores from the autoencoder's output and the heads' statistics: the one
        step every scoring path (stream, backtest, evaluate, trainer) goes through."""
        if self.detector is None:
            return autoencoder
        scores, calibrated = self.detector.score(autoencoder.scores, heads, self.stats)
        return Scored(scores, autoencoder.contributions, calibrated)

    def predict(self, x: np.ndarray, heads: HeadStats) -> Scored:
        """Scores, contributions and calibrated heads, through the streamer's batch path."""
        return self.combine(BatchPredictor(self.scorer)(x), heads)

    def score(self, x: np.ndarray, heads: HeadStats) -> np.ndarray:
        return self.combine(Scored(score_windows(self.scorer, x), None), heads).scores


def announcement_channel(key_prefix: str) -> str:
    """The Redis pub/sub channel on which promotions are announced (``CURRENT`` stays the truth)."""
    return f"{key_prefix}:models"


class PointerMoved(VigilError):
    """A compare-and-set promotion found ``CURRENT`` changed since the trainer started."""


class ModelRegistry:
    def __init__(self, root: Path):
        self.root = Path(root)

    def new_version(self) -> str:
        return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"

    def save(self, model: EncoderLatentAutoencoder, meta: ModelMeta) -> Path:
        """Write a complete version directory (not yet current)."""
        final = self.root / meta.version
        if final.exists():
            raise VigilError(f"model version {meta.version} already exists in {self.root}")
        staging = self.root / f".{meta.version}.partial"
        staging.mkdir(parents=True)
        try:
            model.save(staging / MODEL_FILE)
            (staging / META_FILE).write_text(meta.model_dump_json(indent=2))
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def promote(self, version: str, expected: str | None | object = ...) -> None:
        """Point ``CURRENT`` at ``version``. With ``expected`` (compare-and-set), only if the
        pointer still names that version: of two trainers that started from the same model,
        the second to finish cannot overwrite the first's promotion."""
        if not (self.root / version / META_FILE).is_file():
            raise VigilError(f"no model version {version} in {self.root}")
        with self._locked():
            current = self.current_version()
            if expected is not ... and current != expected:
                raise PointerMoved(f"CURRENT is {current}, not {expected}: another trainer promoted first")
            tmp = self.root / f".{POINTER}.{os.getpid()}.tmp"
            with open(tmp, "w") as handle:
                handle.write(version + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / POINTER)

    @contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_file(self, version: str, name: str, data: bytes) -> Path:
        """Add a file (gate verdict, drift report) to a saved version, atomically."""
        path = self.root / version / name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    def gate_of(self, version: str) -> dict | None:
        try:
            return json.loads((self.root / version / GATE_FILE).read_text())
        except FileNotFoundError:
            return None

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` versions; the current one always stays."""
        current = self.current_version()
        doomed = [v for v in self.versions()[:-keep] if v != current] if keep > 0 else []
        for version in doomed:
            shutil.rmtree(self.root / version)
        return doomed

    def current_version(self) -> str | None:
        try:
            return (self.root / POINTER).read_text().strip() or None
        except FileNotFoundError:
            return None

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / META_FILE).is_file() and not p.name.startswith("."))

    def load(self, version: str | None = None) -> LoadedModel:
        version = version or self.current_version()
        if version is None:
            raise VigilError(f"no current model in {self.root}: train one with `vigil train --events FILE`")
        path = self.root / version
        if not (path / META_FILE).is_file():
            raise VigilError(f"model version {version} not found in {self.root}")
        meta = ModelMeta.model_validate_json((path / META_FILE).read_text())
        model = keras.saving.load_model(path / MODEL_FILE, safe_mode=True)
        loaded = LoadedModel(path, meta, model)
        try:  # refuse an artifact this code cannot featurise for before anyone scores with it
            loaded.spec, loaded.stats, loaded.detector
        except ValueError as exc:
            raise VigilError(f"model version {version}: {exc}") from None
        return loaded


def resolve_model_dir(path: Path) -> tuple[ModelRegistry, str | None]:
    """``--model-dir`` may name a registry root (use its current version) or one version's directory."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return ModelRegistry(path.parent), path.name
    return ModelRegistry(path), None
