"""``EventDecoder``: Kafka message values → valid events as columns, fast for the common case.

Pydantic validation costs several times the streamer's per-event ingest budget. So the fast
path accepts only what the schema plainly accepts (a JSON object with a string sensor_id, integer
epoch-ms timestamp in range, finite int/float features, a 0/1 integer or absent label) and hands
everything else to :meth:`EventSchema.parse_json`, which either accepts it (ISO timestamps...) or
names the precise reason. ``tests/unit/test_decode.py`` checks both paths agree.

The fast path runs column by column over a consume call's values (``decode_many``): a few C-level
passes over the batch (orjson, ``map``, numpy) instead of a Python loop per event. A row any check
declines goes to the full validator on its own. ``decode`` is the same for one value:

    >>> decoder = EventDecoder(EventSchema(["temp"]))
    >>> got = decoder.decode_many([b'{"sensor_id": "a", "timestamp": 1767225600000, "temp": 21}',
    ...                            b'{"sensor_id": "a", "timestamp": "2026-01-01T00:01:00Z", "temp": 21.5}',
    ...                            b'{"sensor_id": "a", "temp": 22}'])
    >>> got.rows, got.timestamps, got.values
    ([0, 1], [1767225600000, 1767225660000], [(21.0,), (21.5,)])
    >>> got.errors[2].reason
    'missing_field'
"""

from __future__ import annotations

from itertools import repeat
from typing import NamedTuple, Sequence

import numpy as np
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


_LABELS = frozenset({0, 1, None})  # the fast path's labels (bool and float are excluded by type first)
_NO_LABEL = {type(None)}


def _not_a_label(value) -> bool:
    return value is not None and (type(value) is not int or value not in (0, 1))


class Decoded(NamedTuple):
    """``decode_many``'s result: the valid events as columns, in input order, and the rest's errors."""

    rows: list[int]  # the input index of each valid event
    sensor_ids: list[str]
    timestamps: list[int]
    values: list[tuple[float, ...]]
    labels: list[int | None]
    errors: dict[int, EventError]  # input index → why that value is not an event


class EventDecoder:
    def __init__(self, schema: EventSchema, max_bytes: int = 16_384):
        self.schema = schema
        self.max_bytes = max_bytes
        self._features = schema.features
        self._label = schema.label_column

    def decode(self, raw: bytes | None) -> SensorEvent:
        """One value; raises :class:`EventError` (with a stable ``reason``) for anything off the contract."""
        got = self.decode_many([raw])
        if got.errors:
            raise got.errors[0]
        return SensorEvent(got.sensor_ids[0], got.timestamps[0], got.values[0], got.labels[0])

    def decode_many(self, raws: Sequence[bytes | None]) -> Decoded:
        """Every value of ``raws`` decoded: the same events and errors as :meth:`decode` one by one
        (any other exception of a row becomes an ``invalid`` error)."""
        n = len(raws)
        if n == 0:
            return Decoded([], [], [], [], [], {})
        datas = self._load_all(raws)
        declined = np.zeros(n, dtype=bool)  # rows the column checks leave to the full validator

        def decline(column: list, wrong, placeholder) -> None:
            # Only the rows of a column with an unexpected type are visited one by one.
            for i, value in enumerate(column):
                if wrong(value):
                    declined[i] = True
                    column[i] = placeholder

        if set(map(type, datas)) != {dict}:
            decline(datas, lambda d: type(d) is not dict, {})
        get = dict.get
        ids = list(map(get, datas, repeat("sensor_id")))
        if set(map(type, ids)) != {str}:
            decline(ids, lambda v: type(v) is not str, "-")
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        declined |= (lengths == 0) | (lengths > MAX_SENSOR_ID_LENGTH)
        declined |= np.fromiter(map(str.isspace, ids), dtype=bool, count=n)

        stamps = list(map(get, datas, repeat("timestamp")))
        if set(map(type, stamps)) != {int} or not MIN_TIMESTAMP_MS <= min(stamps) <= max(stamps) < MAX_TIMESTAMP_MS:
            decline(stamps, lambda t: type(t) is not int or not MIN_TIMESTAMP_MS <= t < MAX_TIMESTAMP_MS,
                    MIN_TIMESTAMP_MS)

        columns = []
        for name in self._features:
            column = list(map(get, datas, repeat(name)))
            if set(map(type, column)) != {float}:
                for i, value in enumerate(column):
                    kind = type(value)
                    if kind is int and -(2**53) <= value <= 2**53:
                        column[i] = float(value)
                    elif kind is not float:
                        declined[i] = True
                        column[i] = 0.0
            declined |= ~(np.abs(np.array(column, dtype=np.float64)) <= MAX_FEATURE_MAGNITUDE)
            columns.append(column)
        values = list(zip(*columns))

        labels = list(map(get, datas, repeat(self._label)))
        kinds = set(map(type, labels))
        if kinds - {int, type(None)}:
            decline(labels, _not_a_label, None)
        elif kinds != _NO_LABEL:
            declined |= ~np.fromiter(map(_LABELS.__contains__, labels), dtype=bool, count=n)

        if not declined.any():
            return Decoded(list(range(n)), ids, stamps, values, labels, {})
        return self._with_declined(raws, declined, ids, stamps, values, labels)

    def _load_all(self, raws: Sequence[bytes | None]) -> list:
        """Each value parsed, or None where it is absent, empty, too large or not JSON."""
        try:
            if max(map(len, raws)) <= self.max_bytes:  # None: TypeError; b"": JSONDecodeError
                return list(map(orjson.loads, raws))
        except (TypeError, orjson.JSONDecodeError):
            pass
        return [self._load(raw) for raw in raws]

    def _load(self, raw: bytes | None):
        if not raw or len(raw) > self.max_bytes:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None

    def _full(self, raw: bytes | None) -> SensorEvent:
        """The full validator's verdict on one value (a row the fast checks declined)."""
        if raw is None or len(raw) == 0:
            raise EventError("empty", "message has no value")
        if len(raw) > self.max_bytes:
            raise EventError("oversized", f"value is {len(raw)} bytes, more than the {self.max_bytes} allowed")
        return self.schema.parse_json(raw)

    def _with_declined(self, raws, declined: np.ndarray, ids, stamps, values, labels) -> Decoded:
        """The columns' rows where no check declined, and the full validator's verdict on the others."""
        out = Decoded([], [], [], [], [], {})
        for i, off in enumerate(declined.tolist()):
            if not off:
                event = (ids[i], stamps[i], values[i], labels[i])
            else:
                try:
                    event = self._full(raws[i])
                except EventError as exc:
                    out.errors[i] = exc
                    continue
                except Exception as exc:  # noqa: BLE001 - no message may stop the partition
                    out.errors[i] = EventError("invalid", f"{type(exc).__name__}: {exc}"[:500])
                    continue
            out.rows.append(i)
            out.sensor_ids.append(event[0])
            out.timestamps.append(event[1])
            out.values.append(event[2])
            out.labels.append(event[3])
        return out
