"""Window featurisation: one sensor's window of per-bin statistics → a fixed [steps, channels] tensor.

The streamer (bins read from Redis), the trainer and the evaluator (bins accumulated from files by
the same arithmetic, :mod:`vigil.buffer.bins`) all call :func:`channels_many`, so a window scored
online is the same tensor as the same window in training or evaluation.
"""

from vigil.features.normalizer import FleetStats
from vigil.buffer.bins import BinStats, bin_events
from vigil.features.window import CHANNEL_GROUPS, DEFAULT_GROUPS, WindowSpec, channel_features, channel_names, featurize_window, channels_one, channels_many

__all__ = ["CHANNEL_GROUPS", "DEFAULT_GROUPS", "BinStats", "FleetStats", "WindowSpec", "bin_events", "channel_features", "channel_names",
           "featurize_window", "channels_one", "channels_many"]
