"""Fitting the encoder-latent autoencoder (see :mod:`vigil.model.autoencoder` for the why)."""

from __future__ import annotations

import os
import keras
import numpy as np

from vigil.model.autoencoder import EncoderLatentAutoencoder
from vigil.model.config import TrainConfig
from vigil.model.predictor import BatchPredictor, keep_xla_off


def seed_everything(seed: int) -> None:
    """Python, NumPy and backend seeds; deterministic kernels where the backend has a switch."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # only to request deterministic ops; the model itself is backend-free

        tf.config.experimental.enable_op_determinism()
        keep_xla_off()  # Keras refuses XLA once deterministic kernels are asked for
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def _fit_kwargs(config: TrainConfig, n: int, verbose: int) -> dict:
    callbacks = []
    kwargs = {"batch_size": config.batch_size, "verbose": verbose, "shuffle": True}
    if n >= 20:  # enough windows to hold some out for early stopping
        kwargs["validation_split"] = 0.1
        callbacks.append(keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True))
    kwargs["callbacks"] = callbacks
    return kwargs


def train_autoencoder(x: np.ndarray, config: TrainConfig = TrainConfig(), verbose: int = 0) -> EncoderLatentAutoencoder:
    """Train on normal windows ``x`` (``[n, steps, channels]``) and return the fitted model."""
    if len(x) == 0:
        raise ValueError("no training windows")
    seed_everything(config.seed)
    x = np.asarray(x, dtype=np.float32)
    # Shuffle once up front so validation_split (the tail) holds out a random part.
    x = x[np.random.default_rng(config.seed).permutation(len(x))]
    _, steps, channels = x.shape
    config = config.sized(steps, channels)
    model = EncoderLatentAutoencoder(steps, channels, config.latent_dim, config.bottleneck, config.objective,
                                     config.decoder, config.score_with_sequence)
    model.build((None, steps, channels))
    fit = _fit_kwargs(config, len(x), verbose)
    model.set_input_statistics(*input_statistics(x))
    if config.objective == "pretrain_freeze":
        _pretrain_then_freeze(model, x, config, fit)
    else:
        model.sequence_decoder.trainable = config.objective == "joint"  # unused by the naive loss
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        model.fit(x, epochs=config.epochs, **fit)
        model.standardize.trainable = False  # inference uses the moving statistics from here on
        inputs = keras.Input(x.shape[1:])
        x_hat = keras.Model(inputs, model.sequence_decoder(model.encode(inputs))).predict(x, batch_size=512, verbose=0)
        model.set_channel_error(np.maximum(np.square(x - x_hat).mean(axis=(0, 1)), 1e-6))
    return model


def input_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread per channel of normal windows, over all their steps. Not per step: training
    windows whose history is shorter than the window leave their first bins empty (many of a
    young fleet's windows), so a per-step spread there is near zero and the start of every full
    window would look anomalous and draw the explanation's span (bench/README.md, quality.py)."""
    return x.mean(axis=(0, 1)), np.maximum(x.std(axis=(0, 1)), 1e-3)


def _pretrain_then_freeze(model: EncoderLatentAutoencoder, x: np.ndarray, config: TrainConfig, fit: dict) -> None:
    inputs = keras.Input(x.shape[1:])
    sequence_ae = keras.Model(inputs, model.sequence_decoder(model.encoder(inputs)))
    sequence_ae.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    sequence_ae.fit(x, x, epochs=config.epochs, **fit)

    model.encoder.trainable = False
    x_hat = sequence_ae.predict(x, batch_size=512, verbose=0)
    model.set_channel_error(np.maximum(np.square(x - x_hat).mean(axis=(0, 1)), 1e-6))
    encoder = keras.Model(inputs, model.encoder(inputs))
    h = encoder.predict(x, batch_size=512, verbose=0)
    model.set_latent_statistics(h.mean(axis=0), h.var(axis=0))
    model.standardize.trainable = False
    z = keras.Model(inputs, model.latent(inputs)).predict(x, batch_size=512, verbose=0)

    latent_in = keras.Input((model.latent_dim,))
    dense_ae = keras.Model(latent_in, model.reconstruct_latent(latent_in))
    dense_ae.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    dense_ae.fit(z, z, epochs=config.dense_epochs, **fit)
    z_hat = dense_ae.predict(z, batch_size=512, verbose=0)
    model.set_latent_error(max(float(np.square(z - z_hat).mean()), 1e-6))


def make_scorer(model: EncoderLatentAutoencoder) -> keras.Model:
    """A functional model mapping windows to ``[score, contributions]`` (one compiled graph for
    batch scoring: the explanation comes out of the same pass as the score)."""
    inputs = keras.Input((model.steps, model.channels))
    return keras.Model(inputs, [model.score(inputs), model.contributions(inputs)])


def score_windows(scorer: keras.Model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Scores of many windows, through the same padded-bucket path the streamer uses."""
    return BatchPredictor(scorer, max_batch=batch_size)(x, with_contributions=False).scores


def latent_spread(model: EncoderLatentAutoencoder, x: np.ndarray) -> float:
    """Mean over latent units of the standard deviation across windows of the encoder's output."""
    inputs = keras.Input((model.steps, model.channels))
    h = keras.Model(inputs, model.encode(inputs)).predict(np.asarray(x, np.float32), verbose=0)
    return float(h.std(axis=0).mean())
