"""Stage 3 (docs/architecture.md): the scoring points of a sensor, in event time.

With ``stream.score_every`` above zero, each sensor's time is cut into spans of that length, and
its window is scored once per span: at the span's last event, when the first event of a later span
arrives (that event *completes* the point). The spans are shifted per sensor by a phase drawn from
its id, so a fleet's points spread evenly over the span instead of all falling on the hour, when
every sensor's bin would close at once. The points depend on each sensor's event times alone, so a
backlog read at once is scored at the points it would have had live, and ``vigil backtest``
finds the same points in a file (:meth:`Cadence.points`). The Lua apply
(:data:`vigil.buffer.scripts.APPLY`) stops a sensor's events at a point, the streamer scores the
window as it stands there, then applies the rest.

With ``score_every`` zero, every new event makes the window ready, and the streamer scores it once
per batch at its newest event: the fastest alerts, but where the points fall depends on arrival.

    >>> c = Cadence(every_ms=3_600_000)
    >>> import numpy as np
    >>> ts = np.array([0, 1_800_000, 3_500_000, 3_700_000, 9_000_000]) + c.phase("s-1")
    >>> c.points("s-1", ts, np.ones(5, bool)).tolist()   # the last event of each span that ends
    [2, 3]
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from vigil.durations import parse_span


@dataclass(frozen=True)
class Cadence:
    every_ms: int  # 0: every new event

    @classmethod
    def from_settings(cls, settings) -> "Cadence":
        """``stream.score_every`` on the buffer's grid (a span may count the window's bins)."""
        window_ms = int(settings.window.length.total_seconds() * 1000)
        return cls(max(0, parse_span(settings.stream.score_every).ms(window_ms, window_ms // settings.window.steps)))

    @property
    def enabled(self) -> bool:
        return self.every_ms > 0

    def phase(self, sensor_id: str) -> int:
        """Where the sensor's spans start, in [0, every_ms): a stable hash of its id, the same in
        every process (Python's own hash is salted per process)."""
        return zlib.crc32(sensor_id.encode()) % self.every_ms if self.enabled else 0

    def spans(self, sensor_id: str, ts_ms: np.ndarray) -> np.ndarray:
        """Each timestamp's span number (what the Lua apply computes per event)."""
        return (np.asarray(ts_ms, dtype=np.int64) - self.phase(sensor_id)) // self.every_ms

    def points(self, sensor_id: str, ts_ms: np.ndarray, full: np.ndarray) -> np.ndarray:
        """A sensor's timestamps (sorted) → the indices of the events its windows are scored at;
        ``full``: which events' windows hold enough events to be scored (``window.min_events``)."""
        if not self.enabled:
            return np.flatnonzero(full)
        span = self.spans(sensor_id, ts_ms)
        closes = np.zeros(len(span), dtype=bool)
        closes[:-1] = span[1:] > span[:-1]  # the open span's events wait for a later one
        return np.flatnonzero(closes & full)
