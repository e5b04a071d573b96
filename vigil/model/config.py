"""Training configuration (no Keras import: the CLI reads it without loading TensorFlow)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

OBJECTIVES = ("pretrain_freeze", "joint", "naive")
DECODERS = ("dense", "lstm")  # the pretraining (sequence) decoder: see EncoderLatentAutoencoder
# Threshold of unlabelled validation scores: this quantile of them.
DEFAULT_QUANTILE = 0.99


def latent_size(steps: int, channels: int) -> tuple[int, int]:
    """Latent and bottleneck widths that follow the window's size: about the square root of the
    values in a window, between 8 and 100, and a quarter of that. A latent as wide as the
    question's 100 lets the dense autoencoder reconstruct the anomalies of a small window too
    (SKAB's 10 steps; the figures are in bench/README.md, "The latent's width")."""
    latent = int(min(100, max(8, round((steps * channels) ** 0.5))))
    return latent, max(2, latent // 4)


@dataclass(frozen=True)
class TrainConfig:
    latent_dim: int | None = None  # None: latent_size() of the window
    bottleneck: int | None = None
    objective: str = "pretrain_freeze"
    decoder: str = "dense"
    score_with_sequence: bool = False
    epochs: int = 20  # encoder (sequence reconstruction) or joint epochs
    dense_epochs: int = 60  # dense autoencoder on frozen latents: cheap, so more of them
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 4
    seed: int = 0

    def sized(self, steps: int, channels: int) -> "TrainConfig":
        """This configuration with the latent widths it leaves open filled in for the window."""
        latent, bottleneck = latent_size(steps, channels)
        latent = self.latent_dim or latent
        return replace(self, latent_dim=latent, bottleneck=self.bottleneck or min(bottleneck, latent))

    def to_dict(self) -> dict:
        return asdict(self)
