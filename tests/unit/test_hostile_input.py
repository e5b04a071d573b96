"""Hostile input at the streamer's decode stage (property-based): every message is either a valid
event or a dead letter with a known reason, and nothing raises out of the batch."""

from __future__ import annotations

import json
import math

from hypothesis import example, given, settings, strategies as st

from streamer.ingest import split_messages
from vigil.events.decode import EventDecoder
from vigil.events.schema import (MAX_FEATURE_MAGNITUDE, EventError, MAX_SENSOR_ID_LENGTH, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS,
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
# Mostly valid events, off by one on each rule now and then: what the fast checks accept.
plausible = st.fixed_dictionaries(
    {"sensor_id": st.text(max_size=3) | st.sampled_from(["s" * 256, "s" * 257, " \t", "\u00a0", "a\u2028"]),
     "timestamp": st.integers(MIN_TIMESTAMP_MS - 2, MIN_TIMESTAMP_MS + 2) | st.integers(MAX_TIMESTAMP_MS - 2, MAX_TIMESTAMP_MS + 2)
     | st.integers(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS) | st.sampled_from(["2026-01-01T00:00:00Z", 1.767e12]),
     "feature_1": st.floats(width=32, allow_nan=False, allow_infinity=False) | st.integers(-(2**53) - 2, 2**53 + 2),
     "feature_2": st.floats(-4e38, 4e38) | st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 10**39])},
    optional={"10_days_alert_label": st.sampled_from([0, 1, None, True, False, 2, 0.0, 1.0, "1"])},
).map(lambda d: json.dumps(d).encode())
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


@settings(max_examples=300, deadline=None)
@given(st.lists(plausible | plausible | st.binary(max_size=300) | as_json | st.none(), min_size=1, max_size=30))
@example([json.dumps({"sensor_id": "s", "timestamp": MIN_TIMESTAMP_MS + i, "feature_1": 1.5, "feature_2": 2.5,
                      "10_days_alert_label": label}).encode() for i, label in enumerate([0, 1, 2, -1, None])])
def test_a_call_decoded_at_once_gets_each_values_own_verdict(raws):
    """``decode_many``'s column checks decide exactly as the full validator does value by value."""
    got = DECODER.decode_many(raws)
    events = dict(zip(got.rows, zip(got.sensor_ids, got.timestamps, got.values, got.labels)))
    assert sorted([*events, *got.errors]) == list(range(len(raws)))
    for i, raw in enumerate(raws):
        try:
            expected = DECODER._full(raw)
        except EventError as exc:
            assert got.errors[i].reason == exc.reason, raw
        else:
            assert events[i] == tuple(expected), raw


def _event(sensor, ts, offset, partition=0):
    message = FakeMessage(json.dumps({"sensor_id": sensor, "timestamp": ts, "feature_1": 1.0,
                                      "feature_2": 2.0}).encode(), offset)
    message.partition = lambda: partition
    return message


def test_pending_events_gather_consume_calls_and_keep_what_a_dead_letter_needs():
    from streamer.ingest import EVENTS_PER_SENSOR, PendingEvents, too_old_letters

    pending = PendingEvents(2)
    first = split_messages([_event("a", 1_767_225_600_000, 0), _event("b", 1_767_225_600_000, 1, partition=3)],
                           DECODER, HORIZON_MS)
    second = split_messages([_event("a", 1_767_225_660_000, 2), FakeMessage(b"not json", 3)], DECODER, HORIZON_MS)
    pending.add(first, now=10.0)
    pending.add(second, now=10.2)
    assert len(pending) == 3 and pending.last_offsets == {0: 3, 3: 1} and pending.since == 10.0
    assert pending.batch.groups() == {("a", 0): [0, 2], ("b", 3): [1]}  # a's events of both calls together
    # Applied when the consumer caught up, when enough wait, or when the oldest waited long enough.
    assert pending.due(10.3, limit=100, wait_s=0.25, behind=False)
    assert not pending.due(10.1, limit=100, wait_s=0.25, behind=True)
    assert pending.due(10.1, limit=3, wait_s=0.25, behind=True)
    assert pending.due(10.3, limit=100, wait_s=0.25, behind=True)
    k = EVENTS_PER_SENSOR
    fresh = PendingEvents(2)  # new sensors, one event each: limit / k of them are as many as may wait
    fresh.add(split_messages([_event(s, 1_767_225_600_000, i) for i, s in enumerate("abc")], DECODER,
                             HORIZON_MS), 0.0)
    assert not fresh.due(0.0, limit=4 * k, wait_s=1.0, behind=True)
    fresh.add(split_messages([_event("d", 1_767_225_600_000, 3)], DECODER, HORIZON_MS), 0.0)
    assert fresh.due(0.0, limit=4 * k, wait_s=1.0, behind=True)
    one_sensor = PendingEvents(2)  # k events of one sensor are worth a buffer write
    for offset in range(k):
        one_sensor.add(split_messages([_event("a", 1_767_225_600_000 + offset, offset)], DECODER, HORIZON_MS), 0.0)
        assert one_sensor.due(0.0, limit=10 * k, wait_s=1.0, behind=True) == (offset == k - 1)
    # A too-old event's dead letter carries the original value and headers, the message long gone.
    letter, = too_old_letters(pending.sources, [(0, 2)], 10 * 86_400_000)
    assert letter.record("dlq").value == second.sources[0].value
    assert (letter.source.topic, letter.source.partition, letter.source.offset) == ("events", 0, 2)
    assert ("traceparent", b"00-abc-01") in letter.headers() and letter.reason == "too_old"
    pending.drop_partitions({0})
    assert pending.batch.sensor_ids == ["b"] and pending.last_offsets == {3: 1} and len(pending.sources) == 1
    assert pending.sources[0] == first.sources[1] and pending.sources[0][1:3] == (3, 1)  # b's, partition 3
    pending.drop_partitions({3})
    assert not pending and pending.since is None
