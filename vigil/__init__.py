"""Vigil: streaming anomaly detection for sensor fleets.

The data's path, one module per stage: ``vigil.events`` (schema) → buffer → featurisation →
model → publish. ``streamer`` and ``trainer`` only compose these stages.
"""

import os

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter (CPU instruction notes, missing CUDA) drowns CLI output;
# errors still show. Set before any module imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
