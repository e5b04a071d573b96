"""``EventDecoder``: Kafka message value → :class:`SensorEvent`, fast for the common case.

Pydantic validation costs several times the streamer's per-event ingest budget. The fast
path accepts only what the schema plainly accepts (a JSON object with a string sensor_id, integer
epoch-ms timestamp in range, finite int/float features, a 0/1 integer or absent label) and hands
everything else to :meth:`EventSchema.parse_json`, which either accepts it (ISO timestamps...) or
names the precise reason. ``tests/unit/test_decode.py`` checks both paths agree.
"""

from __future__ import annotations

import orjson

from vigil.events.schema import (
    MAX_FEATURE_MAGNITUDE,
    MAX_SENSOR_ID_LENGTH,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    EventError,
    EventSchema,
    SensorEvent,
)


class EventDecoder:
    def __init__(self, schema: EventSchema, max_bytes: int = 16_384):
        self.schema = schema
        self.max_bytes = max_bytes
        self._features = schema.features
        self._label = schema.label_column

    def decode(self, raw: bytes | None) -> SensorEvent:
        """Raises :class:`EventError` (with a stable ``reason``) for anything off the contract."""
        if raw is None or len(raw) == 0:
            raise EventError("empty", "message has no value")
        if len(raw) > self.max_bytes:
            raise EventError("oversized", f"value is {len(raw)} bytes, more than the {self.max_bytes} allowed")
        event = self._fast(raw)
        return event if event is not None else self.schema.parse_json(raw)

    def _fast(self, raw: bytes) -> SensorEvent | None:
        """The event when it is plainly valid, else None (the full validator decides)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict:
            return None
        sensor_id = data.get("sensor_id")
        ts = data.get("timestamp")
        if type(sensor_id) is not str or type(ts) is not int or not MIN_TIMESTAMP_MS <= ts < MAX_TIMESTAMP_MS:
            return None
        # orjson refuses lone surrogates, so a str here is valid UTF-8; the id is kept as sent.
        if not sensor_id or len(sensor_id) > MAX_SENSOR_ID_LENGTH or sensor_id.isspace():
            return None
        values = []
        for name in self._features:
            value = data.get(name)
            kind = type(value)
            if kind is float:
                if not -MAX_FEATURE_MAGNITUDE <= value <= MAX_FEATURE_MAGNITUDE:  # also false for NaN
                    return None
            elif kind is int and -(2**53) <= value <= 2**53:
                value = float(value)
            else:
                return None
            values.append(value)
        label = data.get(self._label)
        if label is not None and (type(label) is not int or label not in (0, 1)):
            return None
        return SensorEvent(sensor_id, ts, tuple(values), label)
