"""The streamer's Prometheus metrics, on a registry of its own (several streamers per process in tests)."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from vigil.logging import get_logger

log = get_logger("streamer")

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400)


class StreamMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.consumed = Counter("vigil_events_consumed", "messages taken from the events topic", registry=r)
        self.dead_lettered = Counter("vigil_events_dead_lettered", "invalid messages sent to the DLQ", ["reason"], registry=r)
        self.buffer_writes = Counter(
            "vigil_buffer_writes", "valid events by what the buffer did with them", ["result"], registry=r
        )
        self.batch_windows = Histogram(
            "vigil_batch_windows", "windows per scoring batch", buckets=(1, 8, 32, 64, 128, 256, 512, 1024, 4096), registry=r
        )
        self.scoring_seconds = Histogram("vigil_scoring_seconds", "read + featurise + score of one batch", registry=r)
        self.end_to_end_seconds = Histogram(
            "vigil_end_to_end_seconds", "event-time lag: from a window's newest event time (as the sensor "
            "stamped it) to its score's publication; replayed or historical data lands in the top buckets",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.processing_seconds = Histogram(
            "vigil_processing_seconds", "processing latency: from the Kafka record timestamp of the newest "
            "message of each consume call to the commit that made it durable (scores published)",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.split_sensors = Counter(
            "vigil_sensors_on_several_partitions", "sensors seen on a second events partition (producers "
            "with different partitioners; counted once per sensor and process)", registry=r,
        )
        self.scores = Counter("vigil_scores_published", "scores published", registry=r)
        self.alerts = Counter("vigil_alerts_published", "alert records published", ["kind"], registry=r)
        self.heads = Counter("vigil_scores_by_head", "scores published, by the detection head with the largest "
                                                     "calibrated value (the one that explains the score)", ["head"],
                             registry=r)
        self.lag = Gauge("vigil_consumer_lag", "messages behind the partition's end", ["partition"], registry=r)
        self.retries = Counter("vigil_retries", "waits for an unavailable dependency", ["dependency"], registry=r)
        self.commits = Counter("vigil_offset_commits", "offset commits after durable batches", registry=r)
        self.model_swaps = Counter("vigil_model_swaps", "models loaded (first load included)", registry=r)
        self.model_version = Gauge("vigil_model_info", "the model in use (value 1)", ["version"], registry=r)
        self._split_sensors: set[str] = set()

    def count_applied(self, result) -> None:
        """What the buffer did with a batch's valid events (a ``vigil.buffer.ApplyResult``)."""
        writes = self.buffer_writes
        writes.labels("added").inc(result.added)
        writes.labels("duplicate").inc(result.duplicates)
        writes.labels("resent").inc(result.resent)
        writes.labels("too_old").inc(len(result.too_old))

    def observe_processing(self, record_ms: list[int]) -> None:
        """Kafka record time → now (the commit), for the newest record of each consume call."""
        now_ms = time.time() * 1000
        for ms in record_ms:
            self.processing_seconds.observe(max(now_ms - ms, 0) / 1000)

    def observe_event_time_lag(self, window_ends: list[int]) -> None:
        """Event time → now (the records are acknowledged), for each scored window."""
        now_ms = time.time() * 1000
        for end in window_ends:
            self.end_to_end_seconds.observe(max(now_ms - end, 0) / 1000)

    def model_in_use(self, version: str) -> None:
        self.model_swaps.inc()
        self.model_version.clear()
        self.model_version.labels(version).set(1)

    def sensor_on_second_partition(self, sensor_id: str, partition: int) -> None:
        """A producer whose partitioner differs from the others' puts one sensor on two partitions:
        two replicas may then own it at once. Counted, and logged once per sensor and process."""
        if sensor_id in self._split_sensors:
            return
        self._split_sensors.add(sensor_id)
        self.split_sensors.inc()
        log.warning("sensor arrives on more than one partition: do all producers use the murmur2 "
                    "partitioner? (docs/gateways.md)", sensor_id=sensor_id, partition=partition)

    def record_lag(self, consumer: Consumer, topic: str, partitions: set[int]) -> None:
        """Messages behind each partition's end, from the consumer's cached watermarks."""
        try:
            for tp in consumer.position([TopicPartition(topic, p) for p in sorted(partitions)]):
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and high >= 0:
                    self.lag.labels(str(tp.partition)).set(max(high - tp.offset, 0))
        except KafkaException as exc:
            log.debug("lag unavailable", error=str(exc))
