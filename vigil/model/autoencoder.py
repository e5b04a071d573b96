"""The encoder-latent autoencoder.

An LSTM encoder turns a ``[steps, channels]`` window into a context vector (the latent; the
question used 100, training sizes it to the window: ``vigil.model.config.latent_size``). A small
dense autoencoder (100 → 32 → 100 in the question) must reconstruct the *standardised* latent; its
reconstruction error is the anomaly score. Windows whose latent lies off the manifold of normal
latents reconstruct badly. The scorer also returns each window's ``contributions`` (per step and
channel, its departure from the channel's values in normal training windows), from which
explanations are drawn.

Why it is trained in two stages (``objective="pretrain_freeze"``, the default):
the question's objective trains the encoder against its own output, so a constant encoder reaches
zero loss and carries no information (``objective="naive"`` reproduces this; the collapse test
shows the latent variance vanish). Stop-gradient on the target alone leaves the LSTM untrained
(random). Two remedies (their figures on the same windows: bench/README.md, "The encoder's training
objective"):

* ``pretrain_freeze``: the encoder is first trained with a sequence-reconstruction decoder, then
  frozen; the latent statistics are fixed from the training latents and the dense autoencoder is
  fitted on them. The dense stage sees a fixed target and is cheap (latents are computed once).
* ``joint``: sequence reconstruction plus latent reconstruction (stop-gradient target, batch
  standardisation) trained together. Its latent target moves while the dense autoencoder learns
  it, so it ranks anomalies worse and trains longer.

So ``pretrain_freeze`` is the default; ``joint`` stays available for comparison. The encoder keeps
the LSTM's tanh output (bounded: no ReLU blow-up); the dense output is linear because its target,
the standardised latent, is unbounded (a sigmoid could not reach it). Short windows with few
channels want a far smaller latent (SKAB's 10 x 8 windows: 16 → 4 → 16, ``--latent-dim 16
--bottleneck 4``): a wide latent lets the dense autoencoder reconstruct anomalies as well.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from vigil.model.config import DECODERS, OBJECTIVES
from vigil.model.layers import LatentReconstructionLoss, ReconstructionError, SequenceReconstructionLoss


@keras.saving.register_keras_serializable(package="vigil")
class EncoderLatentAutoencoder(keras.Model):
    def __init__(
        self,
        steps: int,
        channels: int,
        latent_dim: int = 100,
        bottleneck: int = 32,
        objective: str = "pretrain_freeze",
        decoder: str = "dense",
        score_with_sequence: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.steps, self.channels = steps, channels
        self.latent_dim, self.bottleneck, self.objective = latent_dim, bottleneck, objective
        self.decoder, self.score_with_sequence = decoder, score_with_sequence
        self.encoder = layers.LSTM(latent_dim, name="encoder")
        # Standardises latents: batch statistics while jointly training, fixed statistics after
        # the encoder is frozen (set from the training latents by ``set_latent_statistics``).
        self.standardize = layers.BatchNormalization(center=False, scale=False, epsilon=1e-4, name="standardize")
        self.squeeze = layers.Dense(bottleneck, activation="tanh", name="bottleneck")
        self.expand = layers.Dense(latent_dim, name="latent_reconstruction")
        if decoder == "dense":  # one layer from the final state: cheap at scoring time
            parts = [layers.Dense(steps * channels), layers.Reshape((steps, channels))]
        else:  # the question's RepeatVector + LSTM shape
            parts = [layers.RepeatVector(steps), layers.LSTM(latent_dim, return_sequences=True), layers.Dense(channels)]
        self.sequence_decoder = keras.Sequential(parts, name="sequence_decoder")
        self.latent_loss = LatentReconstructionLoss(stop_gradient=objective != "naive", name="latent_loss")
        self.sequence_loss = SequenceReconstructionLoss(name="sequence_loss")
        self.error = ReconstructionError(name="score")

    def build(self, input_shape):
        # Builds every sub-layer (the sequence decoder too) so saved weights always match.
        # The sequence decoder's typical squared error per channel on normal windows (the score
        # that adds it is measured in units of normal), and the normal windows' mean and spread
        # per channel (contributions: where a window departs from normal ones; see
        # ``vigil.model.training.input_statistics``).
        self.channel_error = self.add_weight(shape=(self.channels,), initializer="ones", trainable=False,
                                             name="channel_error")
        self.input_mean = self.add_weight(shape=(self.channels,), initializer="zeros", trainable=False,
                                          name="input_mean")
        self.input_std = self.add_weight(shape=(self.channels,), initializer="ones", trainable=False,
                                         name="input_std")
        # The latent error's typical value on normal windows (for a score that adds both errors).
        self.latent_error = self.add_weight(shape=(), initializer="ones", trainable=False, name="latent_error")
        x = keras.KerasTensor(input_shape)
        h = self.encoder.compute_output_spec(x)
        for layer, shape in ((self.encoder, input_shape), (self.standardize, h.shape),
                             (self.squeeze, h.shape), (self.expand, (None, self.bottleneck)),
                             (self.sequence_decoder, h.shape)):
            if not layer.built:
                layer.build(shape)
        self.built = True

    def encode(self, x, training=False):
        """The LSTM's context vector (the question's ``lstm_out``)."""
        return self.encoder(x, training=training)

    def latent(self, x, training=False):
        """The latent the dense autoencoder reconstructs: raw for ``naive``, standardised otherwise."""
        h = self.encode(x, training=training)
        return h if self.objective == "naive" else self.standardize(h, training=training)

    def reconstruct_latent(self, z):
        return self.expand(self.squeeze(z))

    def call(self, x, training=False):
        h = self.encode(x, training=training)
        z = h if self.objective == "naive" else self.standardize(h, training=training)
        r = self.latent_loss(z, self.reconstruct_latent(z))
        if self.objective == "joint":
            self.sequence_loss(x, self.sequence_decoder(h))
        return r

    def score(self, x):
        """Anomaly score per window: the latent reconstruction error, ``[batch]`` (with
        ``score_with_sequence``: plus the sequence decoder's, each in units of its normal level)."""
        z = self.latent(x)
        error = self.error(z, self.reconstruct_latent(z))
        if not self.score_with_sequence:
            return error
        return error / self.latent_error + ops.mean(self.sequence_error(x), axis=(1, 2))

    def contributions(self, x):
        """Per step and channel, the window's squared departure from the channel's values in the
        normal training windows, in their standard deviations: ``[batch, steps, channels]``.

        Measured on the input rather than on a decoder's error: a reconstruction error lands where
        the decoder fails, which for a window that turned flat (a stuck sensor) is the normal part
        it can no longer reproduce, not the part that changed."""
        return ops.square((x - self.input_mean) / self.input_std)

    def sequence_error(self, x):
        """The sequence decoder's squared error per step and channel, in units of its typical error."""
        x_hat = self.sequence_decoder(self.encode(x))
        return ops.square(x - x_hat) / self.channel_error

    def set_channel_error(self, error) -> None:
        self.channel_error.assign(ops.convert_to_tensor(error, dtype="float32"))

    def set_input_statistics(self, mean, std) -> None:
        self.input_mean.assign(ops.convert_to_tensor(mean, dtype="float32"))
        self.input_std.assign(ops.convert_to_tensor(std, dtype="float32"))

    def set_latent_error(self, error) -> None:
        self.latent_error.assign(ops.convert_to_tensor(error, dtype="float32"))

    def set_latent_statistics(self, mean, variance) -> None:
        self.standardize.moving_mean.assign(ops.convert_to_tensor(mean, dtype="float32"))
        self.standardize.moving_variance.assign(ops.convert_to_tensor(variance, dtype="float32"))

    def get_config(self):
        return {
            **super().get_config(),
            "steps": self.steps,
            "channels": self.channels,
            "latent_dim": self.latent_dim,
            "bottleneck": self.bottleneck,
            "objective": self.objective,
            "decoder": self.decoder,
            "score_with_sequence": self.score_with_sequence,
        }
