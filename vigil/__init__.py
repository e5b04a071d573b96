"""Vigil: streaming anomaly detection for sensor fleets.

The data's path, one module per stage: ``vigil.events`` (schema) → buffer → featurisation →
model → publish. ``streamer`` and ``trainer`` only compose these stages.
"""

from vigil import native_logs

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter reads like failures: hidden unless asked for (vigil/native_logs.py).
native_logs.quiet()
