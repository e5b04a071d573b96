"""Serializable layers of the encoder-latent autoencoder (``keras.layers``/``keras.ops`` only).

The question's ``model.add_loss(mse(lstm_out, decoded))`` on a functional model no longer works
in Keras 3 (symbolic ``add_loss`` was removed); the loss layers below call ``self.add_loss``
inside ``call()`` instead, which every backend supports.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="vigil")
class LatentReconstructionLoss(layers.Layer):
    """Adds ``weight * mean((target - reconstruction)^2)`` to the model's losses; passes ``r`` on.

    ``stop_gradient=True`` treats the latent as a fixed target: the loss trains the dense
    autoencoder only and cannot pull the encoder towards a constant (the collapse of the
    question's objective). ``False`` reproduces the question's objective as written.
    """

    def __init__(self, weight: float = 1.0, stop_gradient: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight
        self.stop_gradient = stop_gradient

    def call(self, target, reconstruction):
        if self.stop_gradient:
            target = ops.stop_gradient(target)
        self.add_loss(self.weight * ops.mean(ops.square(target - reconstruction)))
        return reconstruction

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "stop_gradient": self.stop_gradient}


@keras.saving.register_keras_serializable(package="vigil")
class SequenceReconstructionLoss(layers.Layer):
    """Adds ``weight * mean((x - x_hat)^2)``: keeps the latent informative in joint training."""

    def __init__(self, weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, x, x_hat):
        self.add_loss(self.weight * ops.mean(ops.square(x - x_hat)))
        return x_hat

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="vigil")
class ReconstructionError(layers.Layer):
    """Per-sample mean squared error over the last axis: the anomaly score."""

    def call(self, target, reconstruction):
        return ops.mean(ops.square(target - reconstruction), axis=-1)
