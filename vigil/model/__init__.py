"""The encoder-latent autoencoder: config, layers, model, training, thresholds.

Import the submodules directly (``vigil.model.autoencoder``...): importing this package alone
does not load Keras, so the CLI starts fast.
"""
