"""Sampling the live buffers for training: rules, cap, reproducibility (real Redis)."""

import uuid

import pytest

from trainer.sample import sample_buffers
from vigil.buffer import BufferLayout, EventBatch, RollingBuffer
from vigil.events.schema import SensorEvent

DAY = 86_400_000
T0 = 1_767_225_600_000


@pytest.fixture
def buffer(redis_client):
    prefix = f"it-sample-{uuid.uuid4().hex[:8]}"
    buffer = RollingBuffer(redis_client, BufferLayout(prefix, 2, 10 * DAY), "events")
    batch, offset = EventBatch(2), 0
    for i in range(40):
        label = 1 if i < 4 else 0
        for k in range(12):
            batch.add(SensorEvent(f"s{i:02d}", T0 + k * 3_600_000, (float(k), 1.0), label), 0, offset)
            offset += 1
    buffer.apply(batch)
    # Sensors 4 and 5 raised an alert inside their window (the streamer keeps it in their meta).
    buffer.update_meta({"s04": {"alert_id": "abc", "alert_end": T0}, "s05": {"alert_id": "", "alert_end": T0 + DAY}})
    yield buffer
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)


def test_rules_exclude_labelled_and_alerted_sensors_and_say_how_many(buffer):
    sample = sample_buffers(buffer, ("a", "b"), "label", max_sensors=100)
    assert sample.scanned == 40
    assert sample.excluded == {"latest_label_1": 4, "alerted_in_window": 2, "too_few_events": 0}
    assert len(sample.normal.series) == 34 and len(sample.anomalous.series) == 4
    assert all(s.n_events == 12 and len(s.bins.index) == 12 for s in sample.normal)
    relaxed = sample_buffers(buffer, ("a", "b"), "label", max_sensors=100, exclude_labelled=False, exclude_alerted=False)
    assert len(relaxed.normal.series) == 40


def test_the_cap_and_the_seed_make_the_sample_reproducible(buffer):
    first = sample_buffers(buffer, ("a", "b"), "label", max_sensors=10, seed=1, exclude_labelled=False, exclude_alerted=False)
    again = sample_buffers(buffer, ("a", "b"), "label", max_sensors=10, seed=1, exclude_labelled=False,
                           exclude_alerted=False, scan_count=3)  # another SCAN order
    other = sample_buffers(buffer, ("a", "b"), "label", max_sensors=10, seed=2, exclude_labelled=False, exclude_alerted=False)
    assert len(first.normal.series) == 10
    assert list(first.normal.series) == list(again.normal.series)
    assert set(first.normal.series) != set(other.normal.series)
