"""Window featurisation: one sensor's events inside a window → a fixed [steps, channels] tensor.

The streamer, the trainer and the evaluator all call :func:`featurize_window` (through
:func:`featurize_windows` for many windows), so a window scored online is the same tensor as the
same window in training or evaluation.
"""

from vigil.features.normalizer import FleetStats
from vigil.features.bins import BinStats, bin_events
from vigil.features.window import CHANNEL_GROUPS, DEFAULT_GROUPS, WindowSpec, channel_features, channel_names, featurize_window, featurize_windows, window_channels

__all__ = ["CHANNEL_GROUPS", "DEFAULT_GROUPS", "BinStats", "FleetStats", "WindowSpec", "bin_events", "channel_features", "channel_names",
           "featurize_window", "featurize_windows", "window_channels"]
