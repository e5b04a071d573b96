"""Where and how a sensor's rolling window is stored in Redis.

Per sensor (every key carries the hash tag ``{s:<sensor_id>}``, so one sensor's keys share a
Redis Cluster slot):

* ``<prefix>:{s:<id>}:meta``: a small hash: newest event time, first and open chunk, stored
  count, events since the last score, the last applied Kafka offset per partition (``o:<p>``) and
  the alert state.
* ``<prefix>:{s:<id>}:c:<n>``: the events whose time falls in chunk ``n`` (``n = ts // chunk_ms``),
  as packed little-endian records: uint32 milliseconds into the chunk, then one float32 per
  feature. With two features that is 12 bytes per event, against ~200 for a JSON sorted set.

Per events partition: ``<prefix>:offsets:<topic>`` (a hash of the last applied offset per
partition) and ``<prefix>:journal:<topic>:<partition>`` (alerts sent whose state is not yet in
their sensor's meta, see ``streamer/journal.py``).

Values are kept as float32 (7 significant digits): :func:`vigil.events.schema.quantize` applies
the same rounding to events read from files, so a window scored online equals the same window scored offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

MAX_CHUNK_MS = 2**32 - 1  # the record's uint32 time offset


@dataclass(frozen=True)
class BufferLayout:
    prefix: str
    n_features: int
    window_ms: int
    chunks_per_window: int = 10
    ttl_grace_ms: int = 0

    @classmethod
    def from_settings(cls, settings) -> "BufferLayout":
        """The layout ``vigil stream`` and ``vigil inspect`` use (one place that reads settings)."""
        return cls(settings.redis.key_prefix, len(settings.features),
                   int(settings.window.length.total_seconds() * 1000), settings.redis.chunks_per_window,
                   int(settings.redis.ttl_grace.total_seconds() * 1000))

    def __post_init__(self) -> None:
        if self.chunk_ms > MAX_CHUNK_MS:
            raise ValueError(
                f"a chunk of {self.chunk_ms} ms overflows the 32-bit time offset: raise chunks_per_window"
            )

    @property
    def chunk_ms(self) -> int:
        return -(-self.window_ms // self.chunks_per_window)

    @property
    def ttl_ms(self) -> int:
        # A silent sensor's keys outlive its last write by a window (plus the chunk it is in and
        # the grace for a lagging stream); active sensors are trimmed by event time instead.
        return self.window_ms + self.chunk_ms + self.ttl_grace_ms

    @property
    def record_bytes(self) -> int:
        return self.stored_dtype.itemsize

    @cached_property
    def stored_dtype(self) -> np.dtype:
        return np.dtype([("t", "<u4"), ("v", "<f4", (self.n_features,))])

    @cached_property
    def input_dtype(self) -> np.dtype:
        """What the apply script reads per event: Kafka offset, timestamp, values."""
        return np.dtype([("offset", "<f8"), ("ts", "<f8"), ("v", "<f4", (self.n_features,))])

    def tag(self, sensor_id: str) -> str:
        return f"{self.prefix}:{{s:{sensor_id}}}"

    def meta_key(self, sensor_id: str) -> str:
        return f"{self.tag(sensor_id)}:meta"

    def chunk_prefix(self, sensor_id: str) -> str:
        return f"{self.tag(sensor_id)}:c:"

    def chunk_key(self, sensor_id: str, chunk: int) -> str:
        return f"{self.chunk_prefix(sensor_id)}{chunk}"

    def offsets_key(self, topic: str) -> str:
        return f"{self.prefix}:offsets:{topic}"

    def journal_key(self, topic: str, partition: int) -> str:
        """Alerts sent for this events partition whose state is not yet in their sensors' meta."""
        return f"{self.prefix}:journal:{topic}:{partition}"

    def decode_chunks(self, chunks: list[tuple[int, bytes | None]]) -> tuple[np.ndarray, np.ndarray]:
        """``(chunk number, bytes)`` pairs → (timestamps ms sorted, float64 values ``[n, F]``)."""
        ts_parts, value_parts = [], []
        for number, data in chunks:
            if not data:
                continue
            records = np.frombuffer(data, dtype=self.stored_dtype)
            ts_parts.append(records["t"].astype(np.int64) + number * self.chunk_ms)
            value_parts.append(records["v"])
        if not ts_parts:
            return np.empty(0, np.int64), np.empty((0, self.n_features), np.float64)
        ts = np.concatenate(ts_parts)
        values = np.concatenate(value_parts).astype(np.float64)
        # Stable: events with equal timestamps keep their arrival order, as in a sorted file.
        order = np.argsort(ts, kind="stable")
        return ts[order], values[order]
