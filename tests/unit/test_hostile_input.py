"""Hostile input at the streamer's decode stage (property-based): every message is either a valid
event or a dead letter with a known reason, and nothing raises out of the batch."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings, strategies as st

from streamer.ingest import split_messages
from vigil.events.decode import EventDecoder
from vigil.events.schema import (MAX_FEATURE_MAGNITUDE, MAX_SENSOR_ID_LENGTH, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS,
                                 REASONS, EventSchema)

DECODER = EventDecoder(EventSchema(["feature_1", "feature_2"]), max_bytes=4096)
HORIZON_MS = 1_900_000_000_000  # "now + max_future" for the test


class FakeMessage:
    """The Message accessors split_messages and dead letters read (confluent-kafka's Message cannot be built)."""

    def __init__(self, value, offset):
        self._value, self._offset = value, offset

    def value(self):
        return self._value

    def error(self):
        return None

    def partition(self):
        return 0

    def offset(self):
        return self._offset

    def topic(self):
        return "events"

    def timestamp(self):
        return (1, 1_767_225_600_000 + self._offset)  # TIMESTAMP_CREATE_TIME, epoch ms

    def key(self):
        return None

    def headers(self):
        return [("traceparent", b"00-abc-01")]


scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=40))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                      max_leaves=12)
fields = st.sampled_from(["sensor_id", "timestamp", "feature_1", "feature_2", "10_days_alert_label", "extra"])
near_valid = st.fixed_dictionaries(
    {"sensor_id": st.text(max_size=300) | st.integers(), "timestamp": st.integers(-10**15, 10**15) | st.text(max_size=30)
     | st.floats(allow_nan=True, allow_infinity=True),
     "feature_1": st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**40, 10**40),
     "feature_2": st.floats(width=32) | st.integers(-5, 5)},
    optional={"10_days_alert_label": scalars, "extra": values},
)
as_json = (st.dictionaries(fields, values, max_size=6) | near_valid).map(lambda d: json.dumps(d, allow_nan=True).encode())
deep = st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n)
messages = st.lists(st.binary(max_size=300) | as_json | deep | st.none(), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_every_message_is_an_event_or_a_dead_letter_with_a_reason(raws):
    got = split_messages([FakeMessage(raw, i) for i, raw in enumerate(raws)], DECODER, HORIZON_MS)
    assert len(got.batch) + len(got.dead) == len(raws)
    assert all(d.reason in REASONS for d in got.dead)
    for sensor_id, ts, vals in zip(got.batch.sensor_ids, got.batch.timestamps, got.batch.values):
        assert 0 < len(sensor_id) <= MAX_SENSOR_ID_LENGTH
        sensor_id.encode("utf-8")
        assert MIN_TIMESTAMP_MS <= ts <= min(MAX_TIMESTAMP_MS, HORIZON_MS)
        assert all(math.isfinite(v) and abs(v) <= MAX_FEATURE_MAGNITUDE for v in vals)
