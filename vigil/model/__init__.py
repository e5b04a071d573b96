"""The encoder-latent autoencoder: layers, model, training, thresholds."""

from vigil.model.autoencoder import OBJECTIVES, EncoderLatentAutoencoder

__all__ = ["OBJECTIVES", "EncoderLatentAutoencoder"]
