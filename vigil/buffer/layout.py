"""Where and how a sensor's rolling window is stored in Redis.

Per sensor (every key carries the hash tag ``{s:<sensor_id>}``, so one sensor's keys share a
Redis Cluster slot):

* ``<prefix>:{s:<id>}:meta``: a small hash (:mod:`vigil.buffer.meta`): newest event time, events
  stored and since the last score, the grid the bins were written on, the last applied Kafka
  offset per partition (``o:<p>``) and the alert state.
* ``<prefix>:{s:<id>}:bins``: one string of fixed size, written in place (``SETRANGE``):
  ``steps`` bin records (:func:`vigil.buffer.bins.record_dtype`; bin ``b`` in slot ``b % steps``,
  slots of bins that left the window zeroed), then the resend tail: the sensor's latest
  ``resent_tail`` events as they arrived (uint32 of the time in ms modulo 2^32, one float32 per
  feature), a ring in order of arrival.

Per events partition: ``<prefix>:offsets:<topic>`` (a hash of the last applied offset per
partition) and ``<prefix>:journal:<topic>:<partition>`` (alerts sent whose state is not yet in
their sensor's meta, see ``streamer/journal.py``).

Values are kept as float32 (7 significant digits): :func:`vigil.events.schema.quantize` applies
the same rounding to events read from files, so a window scored online equals the same window
scored offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from vigil.buffer.bins import bin_width, record_dtype


@dataclass(frozen=True)
class BufferLayout:
    prefix: str
    n_features: int
    window_ms: int
    steps: int = 240
    resent_tail: int = 16
    ttl_grace_ms: int = 0

    @classmethod
    def from_settings(cls, settings) -> "BufferLayout":
        """The layout ``vigil stream`` and ``vigil inspect`` use (one place that reads settings)."""
        return cls(settings.redis.key_prefix, len(settings.features),
                   int(settings.window.length.total_seconds() * 1000), settings.window.steps,
                   settings.redis.resent_tail, int(settings.redis.ttl_grace.total_seconds() * 1000))

    def __post_init__(self) -> None:
        bin_width(self.window_ms, self.steps)

    @property
    def bin_ms(self) -> int:
        return self.window_ms // self.steps

    @property
    def grid(self) -> str:
        """What the bins string's layout depends on, stamped in the meta: a change rebuilds it."""
        return f"{self.bin_ms}x{self.steps}x{self.n_features}x{self.resent_tail}"

    @property
    def ttl_ms(self) -> int:
        # A silent sensor's keys outlive its last write by a window and the grace for a lagging
        # stream, plus up to a bin: the apply sets the TTL again only once it was set a bin ago
        # (scripts.py). Active sensors' bins leave the window by event time instead.
        return self.window_ms + self.bin_ms + self.ttl_grace_ms

    @cached_property
    def record(self) -> np.dtype:
        return record_dtype(self.n_features)

    @cached_property
    def tail_record(self) -> np.dtype:
        return np.dtype([("t", "<u4"), ("v", "<f4", (self.n_features,))])

    @property
    def bins_bytes(self) -> int:
        """The size of a sensor's bins string: the ring of bins and the resend tail."""
        return self.steps * self.record.itemsize + self.resent_tail * self.tail_record.itemsize

    @cached_property
    def input_dtype(self) -> np.dtype:
        """What the apply script reads per event: Kafka offset, timestamp, values."""
        return np.dtype([("offset", "<f8"), ("ts", "<f8"), ("v", "<f4", (self.n_features,))])

    def tag(self, sensor_id: str) -> str:
        return f"{self.prefix}:{{s:{sensor_id}}}"

    def meta_key(self, sensor_id: str) -> str:
        return f"{self.tag(sensor_id)}:meta"

    def bins_key(self, sensor_id: str) -> str:
        return f"{self.tag(sensor_id)}:bins"

    def sensor_keys(self, sensor_id: str) -> tuple[bytes, bytes]:
        """The meta and bins keys as bytes, built once from the tag (the apply's hot path)."""
        tag = self.tag(sensor_id).encode()
        return tag + b":meta", tag + b":bins"

    def offsets_key(self, topic: str) -> str:
        return f"{self.prefix}:offsets:{topic}"

    def journal_key(self, topic: str, partition: int) -> str:
        """Alerts sent for this events partition whose state is not yet in their sensors' meta."""
        return f"{self.prefix}:journal:{topic}:{partition}"

    @cached_property
    def bins_dtype(self) -> np.dtype:
        """A whole bins string: the ring of records, then the tail (left undecoded)."""
        return np.dtype({"names": ["ring"], "formats": [(self.record, (self.steps,))], "itemsize": self.bins_bytes})

    def decode_rings(self, strings: list[bytes | None], newest_ms: np.ndarray) -> np.ndarray:
        """Bins strings (None: no buffer) → ``[len, steps]`` records in time order, oldest bin first:
        the window ending at the bin of each ``newest_ms`` (empty bins are all zero)."""
        empty = bytes(self.bins_bytes)
        data = b"".join(x if x is not None and len(x) == self.bins_bytes else empty for x in strings)
        rings = np.frombuffer(data, dtype=self.bins_dtype)["ring"]
        top = np.asarray(newest_ms, dtype=np.int64) // self.bin_ms
        slots = (top[:, None] - self.steps + 1 + np.arange(self.steps)) % self.steps
        return rings[np.arange(len(strings))[:, None], slots]
