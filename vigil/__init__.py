"""Vigil: streaming anomaly detection for sensor fleets.

The data's path, one module per stage: ``vigil.events`` (schema) → buffer → featurisation →
model → publish. ``streamer`` and ``trainer`` only compose these stages.
"""

__version__ = "0.1.0"
