"""``EventDecoder``: Kafka message values → valid events as columns, fast for the common case.

Pydantic validation costs several times the streamer's per-event ingest budget. So the fast
path accepts only what the schema plainly accepts (a JSON object with a string sensor_id, integer
epoch-ms timestamp in range, finite features within float32 range, a 0/1 integer or absent label)
and hands everything else to :meth:`EventSchema.parse_json`, which either accepts it (ISO
timestamps...) or names the precise reason. ``tests/unit/test_decode.py`` checks both paths agree.

The fast path is one msgspec ``Struct`` per schema (``fast_event_type``): msgspec parses each value
straight into it and checks every type and range while it parses, in C; the columns are then
taken with ``attrgetter`` over the batch. The one rule left to Python is the sensor id's visible
character (``str.isspace`` over the column). A value msgspec refuses goes to the full validator on
its own. ``decode`` is the same for one value:

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

from operator import attrgetter
from typing import Annotated, NamedTuple, Sequence

import msgspec
import numpy as np

from vigil.events.schema import (
    MAX_FEATURE_MAGNITUDE,
    MAX_SENSOR_ID_LENGTH,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    EventError,
    EventSchema,
    SensorEvent,
)


def fast_event_type(schema: EventSchema) -> type[msgspec.Struct]:
    """The Struct msgspec decodes the fast path's values into. Its fields say what the fast path
    accepts: a value of another type (a bool, an ISO timestamp, a float label...) or out of range
    fails to decode and is left to the full validator. A feature sent as an integer becomes the
    float Python's ``float()`` gives it. Extra keys are ignored; of a repeated key, the last counts
    (as ``json.loads`` does)."""
    fields = [
        ("sensor_id", Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SENSOR_ID_LENGTH)]),
        ("timestamp", Annotated[int, msgspec.Meta(ge=MIN_TIMESTAMP_MS, lt=MAX_TIMESTAMP_MS)]),
        *((f"f{i}", Annotated[float, msgspec.Meta(ge=-MAX_FEATURE_MAGNITUDE, le=MAX_FEATURE_MAGNITUDE)])
          for i in range(len(schema.features))),
        ("label", Annotated[int, msgspec.Meta(ge=0, le=1)] | None, None),
    ]
    rename = {f"f{i}": name for i, name in enumerate(schema.features)} | {"label": schema.label_column}
    # gc=False: an event holds only strings and numbers, so the collector need not track thousands
    # of them a consume call.
    return msgspec.defstruct("FastEvent", fields, rename=rename, gc=False)


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
        event_type = fast_event_type(schema)
        self._fast = msgspec.json.Decoder(event_type)
        # What a declined row holds until the full validator replaces it: any valid event.
        self._placeholder = event_type("-", MIN_TIMESTAMP_MS, *([0.0] * len(schema.features)))
        self._features = [attrgetter(f"f{i}") for i in range(len(schema.features))]

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
        events, declined = self._load_all(raws)
        ids = list(map(attrgetter("sensor_id"), events))
        declined |= np.fromiter(map(str.isspace, ids), dtype=bool, count=n)
        stamps = list(map(attrgetter("timestamp"), events))
        values = list(zip(*(map(feature, events) for feature in self._features)))
        labels = list(map(attrgetter("label"), events))
        if not declined.any():
            return Decoded(list(range(n)), ids, stamps, values, labels, {})
        return self._with_declined(raws, declined, ids, stamps, values, labels)

    def _load_all(self, raws: Sequence[bytes | None]) -> tuple[list, np.ndarray]:
        """Each value decoded into the fast path's Struct, and which ones it declined (absent,
        empty, too large, not JSON, or off the Struct's types and ranges: a placeholder there)."""
        declined = np.zeros(len(raws), dtype=bool)
        try:
            if max(map(len, raws)) <= self.max_bytes:  # None: TypeError; b"": DecodeError
                return list(map(self._fast.decode, raws)), declined
        except Exception:  # noqa: BLE001 - DecodeError, RecursionError (deep nesting)...: see each row
            pass
        events = []
        for i, raw in enumerate(raws):
            try:
                if not raw or len(raw) > self.max_bytes:
                    raise ValueError("absent, empty or too large")
                events.append(self._fast.decode(raw))
            except Exception:  # noqa: BLE001 - the full validator names the reason
                events.append(self._placeholder)
                declined[i] = True
        return events, declined

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
