"""Training configuration (no Keras import: the CLI reads it without loading TensorFlow)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

OBJECTIVES = ("pretrain_freeze", "joint", "naive")
# Threshold of unlabelled validation scores: this quantile of them.
DEFAULT_QUANTILE = 0.99


@dataclass(frozen=True)
class TrainConfig:
    latent_dim: int = 100
    bottleneck: int = 32
    objective: str = "pretrain_freeze"
    epochs: int = 20  # encoder (sequence reconstruction) or joint epochs
    dense_epochs: int = 60  # dense autoencoder on frozen latents: cheap, so more of them
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 4
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
