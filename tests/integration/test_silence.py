"""Silence alerts end to end: a sensor that stops while its partition goes on is alerted once,
and its next event, after a restart, clears the alert (streamer/silence.py)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from streamer.app import Streamer
from vigil.buffer import meta as sensor_meta
from vigil.kafka.clients import make_producer

from tests.integration.streaming import buffer_of, isolated_settings, read_all, running, topics_of, values, wait_consumed

BIN = 5 * 60_000  # a 2h window of 24 bins
SILENT_BINS = 6
PARTITION = 0  # both sensors on one partition: only that partition's event time counts for them


def produce(cfg, events: list[tuple[str, int]]) -> None:
    producer = make_producer(cfg)
    for sensor_id, ts in sorted(events, key=lambda e: e[1]):
        value = {"sensor_id": sensor_id, "timestamp": ts, "feature_1": 0.5, "feature_2": 1.25}
        producer.produce(cfg.topics.events, key=sensor_id.encode(), value=json.dumps(value).encode(),
                         partition=PARTITION)
    assert producer.flush(60) == 0


def silent_records(cfg) -> list[dict]:
    return [r for r in values(read_all(cfg, cfg.topics.alerts)) if r["reason"] == "silent"]


def test_a_sensor_that_stops_is_alerted_silent_once_and_cleared_when_it_sends_again(settings, tmp_path):
    # No model: silence needs none, and the alerts topic then holds only silence records.
    cfg = isolated_settings(settings, model_dir=tmp_path / "models", poll_events=5)
    cfg = cfg.model_copy(update={"window": cfg.window.model_copy(update={"length": timedelta(hours=2), "steps": 24}),
                                 "alerts": cfg.alerts.model_copy(update={"silent_bins": SILENT_BINS})})
    t0 = (int(time.time() * 1000) // BIN - 24 * 12) * BIN  # a day ago, on the grid
    quiet = [("quiet", t0 + k * BIN) for k in range(12)]  # an hour, then nothing
    busy = [("busy", t0 + k * BIN + 1000) for k in range(48)]  # four hours: 36 bins past the quiet one's last
    with topics_of(cfg):
        produce(cfg, quiet + busy)
        with running(Streamer(cfg)) as streamer:
            wait_consumed(streamer, len(quiet) + len(busy))
        [opened] = silent_records(cfg)
        with buffer_of(cfg) as buffer:
            meta = {k.decode(): v.decode() for k, v in buffer.client.hgetall(buffer.layout.meta_key("quiet")).items()}
        assert (opened["kind"], opened["sensor_id"], opened["window_end"]) == ("alert", "quiet", quiet[-1][1])
        assert opened["explanation"] is None and opened["score"] == 0.0
        assert meta[sensor_meta.SILENT_ID] == opened["alert_id"]

        # A restarted streamer has never seen the quiet sensor; its meta says it is alerted.
        back = [("busy", t0 + 48 * BIN + 1000), ("quiet", t0 + 49 * BIN)]
        produce(cfg, back)
        with running(Streamer(cfg)) as streamer:
            wait_consumed(streamer, len(back))
        records = silent_records(cfg)
        with buffer_of(cfg) as buffer:
            silent_id = buffer.client.hget(buffer.layout.meta_key("quiet"), sensor_meta.SILENT_ID)

    assert [(r["kind"], r["sensor_id"]) for r in records] == [("alert", "quiet"), ("cleared", "quiet")]
    cleared = records[1]
    assert cleared["clears"] == opened["alert_id"] and cleared["window_end"] == back[1][1]
    assert silent_id == b""
