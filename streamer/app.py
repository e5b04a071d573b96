"""``Streamer``: composes the stages of DESIGN.md's Shape into one loop.

A *cycle* consumes until the longest-waiting ready window has waited ``max_wait`` (or, with
nothing waiting to be scored, after each consume call). Each consume call is decoded (bad messages
→ DLQ) and applied to Redis at once; whenever ``max_batch_windows`` windows are ready (and the
consumer is not behind) they are scored and their records sent at once. At the cycle's end the
rest is scored, Kafka must acknowledge every record (DLQ included), the scored state is written
to Redis, and only then are the consumed offsets committed. A crash anywhere re-reads uncommitted
messages and the buffer ignores the ones it already applied; the alert journal keeps an alert
from being published twice. With ``delivery: exactly-once`` the records and the offsets are
committed in one Kafka transaction instead, so a read_committed consumer sees no duplicate score.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import orjson
import redis
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from vigil.alerts import AlertPolicy, AlertState
from vigil.buffer import BufferLayout, RollingBuffer
from vigil.events.decode import EventDecoder
from vigil.events.outputs import ScoreRecord
from vigil.events.schema import EventSchema
from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.reading import read_since
from vigil.logging import get_logger
from vigil.registry import ModelRegistry, announcement_channel
from vigil.redis_client import connect
from vigil.settings import VigilSettings
from streamer.health import Health, serve
from streamer.ingest import DeadLetter, split_messages, too_old_letters
from streamer.journal import AlertJournal, PendingAlert
from streamer.metrics import StreamMetrics
from streamer.offsets import resume_offsets
from streamer.models import ModelWatcher
from streamer.publish import Outgoing, Publisher, TransactionAborted, TransactionalPublisher
from streamer.readiness import ReadySet
from streamer.retry import Stopped, retrying
from streamer.scoring import ScoredWindow, explanation_meta, score_sensors

log = get_logger("streamer")

# Commit failures while the group rebalances (the partitions may or may not stay with us).
_REBALANCING = {KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS}
LAG_EVERY_S = 5.0
KAFKA_QUIET_S = 15.0  # Kafka counts as back once librdkafka has reported no error for this long
JOURNAL_SLACK_MS = 60_000  # read the alerts topic from this long before the oldest journal entry


class Streamer:
    def __init__(self, settings: VigilSettings, registry: ModelRegistry | None = None):
        s = settings.stream
        self.settings = settings
        self.stop_event = threading.Event()
        self.metrics = StreamMetrics()
        self.health = Health()
        self.topic = settings.topics.events
        layout = BufferLayout.from_settings(settings)
        window_ms = layout.window_ms
        self.redis = connect(settings, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30)
        self.buffer = RollingBuffer(self.redis, layout, self.topic)
        self.journal = AlertJournal(self.redis, layout, self.topic)
        self.decoder = EventDecoder(EventSchema(settings.features, settings.label_column), s.max_event_bytes)
        # error_cb: librdkafka reconnects by itself; these callbacks make an outage visible.
        # With an instance id, membership is static: a restarted replica gets its partitions
        # back at once instead of after the session timeout.
        static = {"group.instance.id": s.instance_id} if s.instance_id else {}
        self.consumer = make_consumer(settings, s.group_id, error_cb=self._kafka_error, **static)
        self.exactly_once = s.delivery == "exactly-once"
        producer_config = {"linger.ms": 5, "error_cb": self._kafka_error}
        if self.exactly_once:
            producer = make_producer(settings, **producer_config, **{"transactional.id": s.transactional_id()})
            self.publisher = TransactionalPublisher(producer, self.stop_event, self._on_retry)
        else:
            self.publisher = Publisher(make_producer(settings, **producer_config), self.stop_event, self._on_retry)
        self.ready = ReadySet(s.score_every_events, s.score_min_interval.total_seconds(), settings.window.min_events)
        self.alerts = AlertPolicy(settings.alerts, window_ms)
        self.models = (
            ModelWatcher(registry or ModelRegistry(settings.models_path), settings.features, window_ms,
                         s.max_batch_windows, s.model_poll.total_seconds(), self._subscribe(settings))
            if s.scoring else None
        )
        self.uncommitted: dict[int, int] = {}  # partition → last offset processed, not yet committed
        self._assigned: set[int] = set()
        self._next_lag = 0.0
        self._model_version: str | None = None
        self._kafka_error_at = -float("inf")
        self._failed = False  # set when the loop dies: closing must then not commit anything
        self._scored_meta: dict[str, dict] = {}  # this cycle's scored sensors: meta to write after acks
        self._scored_partition: dict[str, int] = {}
        self._scored_ends: list[int] = []
        self._journaled: dict[int, set[str]] = {}  # partition → ids of this cycle's alerts in the journal
        self._consumed_record_ms: list[int] = []  # per consume call of this cycle: its newest record's time
        self._split_sensors: set[str] = set()  # sensors already reported on a second partition
        self._server = None

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self) -> int:
        """Until :meth:`stop`: returns 0 after a clean drain, 1 if a dependency stayed away."""
        s = self.settings.stream
        if s.metrics_port:
            self._server = serve(s.metrics_host, s.metrics_port, self.metrics.registry, self.health)
        if self.exactly_once:
            self.publisher.init(self._retrying_kafka)
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        if self.models is not None:
            self.health.set("model", "no model loaded yet")
            waiting = 120.0 if self.models.registry.current_version() else 0.0  # load what exists first
            if self.models.wait_loaded(waiting) is None:
                log.warning("no usable model yet: ingesting only; scoring starts once one is promoted",
                            model_dir=str(self.models.registry.root))
            self._model_check()
        self.health.set("startup", None)
        log.info("streaming", topic=self.topic, group=s.group_id, scoring=s.scoring, delivery=s.delivery,
                 max_batch=s.max_batch_windows, max_wait=str(s.max_wait))
        code = 0
        try:
            while not self.stop_event.is_set():
                self._cycle()
            self.ready.release_due(time.monotonic(), everything=True)
            self._finish_cycle()
        except Stopped as exc:
            self._failed = True
            log.error("stopping before the last batch was committed; it will be re-read (idempotently)",
                      dependency=str(exc))
            code = 1
        except BaseException:
            self._failed = True  # whatever was taken for scoring is lost: re-read it, do not commit
            raise
        finally:
            self._close()
        log.info("stopped", exit_code=code)
        return code

    def stop(self) -> None:
        self.stop_event.set()

    def _close(self) -> None:
        if self._failed and self.exactly_once and self.publisher.in_transaction:
            try:  # otherwise it stays open, stalling read_committed readers, until it times out
                self.publisher.abort(lambda action: action())
            except KafkaException as exc:
                log.warning("could not abort the open transaction; it times out", error=str(exc))
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("consumer close failed", error=str(exc))
        self.publisher.producer.flush(5)
        if self.models is not None:
            self.models.close()
        if self._server is not None:
            self._server.shutdown()

    # -- one cycle -----------------------------------------------------------------------------
    def _cycle(self) -> None:
        s = self.settings.stream
        max_wait = s.max_wait.total_seconds()
        backlogged = False
        while not self.stop_event.is_set():
            self.health.beat()
            now = time.monotonic()
            self.ready.release_due(now)
            # A full batch is scored at once, unless the consumer is behind: then waiting until
            # the deadline lets more of each sensor's events share one score (a sensor is scored
            # once per batch, at its newest event), which is what lets the stream catch up.
            while len(self.ready) >= s.max_batch_windows and not backlogged:
                self._score_batch(self.ready.take(s.max_batch_windows))
            oldest = self.ready.first_ready_at
            if oldest is not None:
                timeout = oldest + max_wait - now
                if timeout <= 0:
                    break
            else:
                timeout = 0.5
            messages = self.consumer.consume(s.poll_events, timeout)
            backlogged = len(messages) >= s.poll_events
            if messages:
                self._ingest(messages)
            if time.monotonic() - self._kafka_error_at > KAFKA_QUIET_S:
                self.health.set("kafka", None)
            if not self.ready and (self.uncommitted or not messages):
                break  # nothing waits to be scored: make what was consumed durable now
        self._finish_cycle()
        self._model_check()
        self._report_lag()

    def _ingest(self, messages: list) -> None:
        horizon = int(time.time() * 1000 + self.settings.stream.max_future.total_seconds() * 1000)
        got = split_messages(messages, self.decoder, horizon)
        for err in got.errors:
            self._consumer_error(err)
        self.metrics.consumed.inc(len(messages) - len(got.errors))
        for dead in got.dead:
            self._dead_letter(dead)
        result = self._retrying(lambda: self.buffer.apply(got.batch), "redis")
        writes = self.metrics.buffer_writes
        writes.labels("added").inc(result.added)
        writes.labels("duplicate").inc(result.duplicates)
        writes.labels("resent").inc(result.resent)
        writes.labels("too_old").inc(len(result.too_old))
        if result.too_old:  # nothing valid vanishes: the producer learns its events came too late
            for dead in too_old_letters(messages, result.too_old, self.buffer.layout.window_ms):
                self._dead_letter(dead)
        for sensor_id, partition in result.other_partition:
            self._other_partition(sensor_id, partition)
        if got.newest_record_ms is not None:
            self._consumed_record_ms.append(got.newest_record_ms)
        for partition, offset in got.last_offsets.items():
            self.uncommitted[partition] = max(offset, self.uncommitted.get(partition, -1))
        if self.models is not None and self.models.active is not None:
            self.ready.offer(result.states, time.monotonic())

    def _score_batch(self, states: list) -> None:
        """Score one batch and send its records now; their scored state is written after the acks."""
        model = self.models.active if self.models is not None else None
        if not states or model is None:
            return
        t0 = time.perf_counter()
        windows = self._retrying(
            lambda: score_sensors(self.buffer, model, states, self.settings.window.min_events), "redis"
        )
        self.metrics.scoring_seconds.observe(time.perf_counter() - t0)
        self.metrics.batch_windows.observe(len(windows))
        now_ms = int(time.time() * 1000)
        self._scored_partition.update((state.sensor_id, state.partition) for state in states)
        outgoing: list[Outgoing] = []
        journal: dict[int, list[PendingAlert]] = {}
        for window in windows:
            # A sensor scored twice in one cycle sees the alert state its first score left.
            unsaved = self._scored_meta.get(window.sensor_id)
            if unsaved:
                window = replace(window, meta={**window.meta, **unsaved})
            alert_id, fields = self._records(window, model, now_ms, outgoing)
            if alert_id is not None:
                journal.setdefault(self._scored_partition[window.sensor_id], []).append(
                    PendingAlert(alert_id, window.sensor_id, now_ms, fields))
            self._scored_meta[window.sensor_id] = {**(unsaved or {}), "pending": 0,
                                                   "scored_end": window.window_end, **fields,
                                                   **explanation_meta(window)}
            self._scored_ends.append(window.window_end)
        if journal:  # before the alerts leave: see streamer/journal.py
            self._retrying(lambda: self.journal.record(journal), "redis")
            for partition, entries in journal.items():
                self._journaled.setdefault(partition, set()).update(a.alert_id for a in entries)
        for record in outgoing:
            self.publisher.send(record)

    def _finish_cycle(self) -> None:
        """Score what is still ready, have Kafka take every record, record the scored state, commit."""
        size = self.settings.stream.max_batch_windows
        while len(self.ready):
            self._score_batch(self.ready.take(size))
        if self.exactly_once:
            if self.uncommitted or self.publisher.in_transaction:
                try:
                    self.publisher.commit(self._offsets_to_commit(), self.consumer.consumer_group_metadata(),
                                          self._retrying_kafka)
                except TransactionAborted:
                    self._rewind_after_abort()
                    return
                self.uncommitted.clear()
                self.metrics.commits.inc()
                self._observe_processing()
            self._record_scored()
        else:
            self._retrying(self.publisher.flush, "kafka")
            self._record_scored()
            self._commit()

    def _record_scored(self) -> None:
        """Write the scored state (and alert state) of this cycle's sensors; clear their journal."""
        if self._scored_meta:
            published_ms = time.time() * 1000
            for end in self._scored_ends:
                self.metrics.end_to_end_seconds.observe(max(published_ms - end, 0) / 1000)
            meta = self._scored_meta
            self._retrying(lambda: self.buffer.update_meta(meta), "redis")
            self.ready.mark_scored(list(meta), time.monotonic())
        self._clear_journal()
        self._forget_scored()

    def _clear_journal(self) -> None:
        """This cycle's journal entries: their state is recorded now, or their records were aborted."""
        if self._journaled:
            journaled = self._journaled
            self._retrying(lambda: self.journal.remove(journaled), "redis")

    def _forget_scored(self) -> None:
        self._scored_meta, self._scored_ends, self._scored_partition, self._journaled = {}, [], {}, {}

    def _rewind_after_abort(self) -> None:
        """After an aborted transaction: forget the cycle and re-read from the committed offsets."""
        self._clear_journal()  # those alerts never became visible
        self._forget_scored()
        self.ready.drop_partitions(set(self._assigned))
        self.uncommitted.clear()
        self._consumed_record_ms = []
        tps = [TopicPartition(self.topic, p) for p in sorted(self._assigned)]
        committed = self._retrying_kafka(lambda: self.consumer.committed(tps, timeout=30))
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._retrying_kafka(lambda: self.consumer.seek(TopicPartition(self.topic, tp.partition, offset)))

    def _records(self, window: ScoredWindow, model, now_ms: int, out: list[Outgoing]) -> tuple[str | None, dict[str, str]]:
        """Append the window's score (and alert) records to ``out``; (alert id or None, meta fields)."""
        topics = self.settings.topics
        threshold = model.loaded.threshold
        record = ScoreRecord(sensor_id=window.sensor_id, window_start=window.window_start,
                             window_end=window.window_end, n_events=window.n_events, score=window.score,
                             threshold=threshold, alert=window.score >= threshold,
                             warming_up=self.alerts.warming_up(window), model_version=model.version,
                             scored_at=now_ms, explanation=window.explanation)
        key = window.sensor_id.encode()
        out.append(Outgoing(topics.scores, key, orjson.dumps(record.model_dump())))
        self.metrics.scores.inc()
        decision = self.alerts.decide(window, AlertState.from_meta(window.meta), threshold, model.version, now_ms)
        alert, fields = decision.record, decision.state.to_meta()
        if alert is None:
            return None, fields
        out.append(Outgoing(topics.alerts, key, orjson.dumps(alert.model_dump())))
        self.metrics.alerts.labels(alert.kind).inc()
        log.info("alert" if alert.kind == "alert" else "alert cleared", sensor_id=window.sensor_id,
                 score=round(window.score, 4), threshold=round(threshold, 4), alert_id=alert.alert_id)
        return alert.alert_id, fields

    def _other_partition(self, sensor_id: str, partition: int) -> None:
        """A producer whose partitioner differs from the others' puts one sensor on two partitions:
        two replicas may then own it at once. Counted, and logged once per sensor and process."""
        if sensor_id in self._split_sensors:
            return
        self._split_sensors.add(sensor_id)
        self.metrics.split_sensors.inc()
        log.warning("sensor arrives on more than one partition: do all producers use the murmur2 "
                    "partitioner? (docs/gateways.md)", sensor_id=sensor_id, partition=partition)

    def _observe_processing(self) -> None:
        """Kafka record time → commit, for the newest record of each consume call just committed."""
        now_ms = time.time() * 1000
        for record_ms in self._consumed_record_ms:
            self.metrics.processing_seconds.observe(max(now_ms - record_ms, 0) / 1000)
        self._consumed_record_ms = []

    def _dead_letter(self, dead: DeadLetter) -> None:
        msg = dead.message
        self.metrics.dead_lettered.labels(dead.reason).inc()
        value, headers = msg.value() or b"", dead.headers()
        try:
            self.publisher.send(Outgoing(self.settings.topics.dlq, msg.key() or b"", value, headers))
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            # Larger than the DLQ topic takes: keep the head, and say how long the original was.
            headers.append(("vigil.truncated_from", str(len(value)).encode()))
            self.publisher.send(Outgoing(self.settings.topics.dlq, msg.key() or b"", value[:65536], headers))

    def _offsets_to_commit(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p, o + 1) for p, o in sorted(self.uncommitted.items())]

    def _commit(self) -> None:
        if not self.uncommitted:
            return
        offsets = self._offsets_to_commit()

        def commit() -> bool:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
                return True
            except KafkaException as exc:
                if exc.args[0].code() == KafkaError._NO_OFFSET:
                    return True  # nothing new to commit
                if exc.args[0].code() not in _REBALANCING:
                    raise
                # Kept: committed at the revocation or next cycle if the partitions stay ours;
                # otherwise dropped at assignment, and their new owner re-reads them idempotently.
                log.info("commit deferred by a rebalance", error=str(exc))
                return False

        if self._retrying(commit, "kafka"):
            self.uncommitted.clear()
            self.metrics.commits.inc()
            self._observe_processing()

    # -- rebalance -----------------------------------------------------------------------------
    def _on_assign(self, consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = {tp.partition for tp in partitions}
        # Offsets of partitions that went elsewhere are the new owner's to (re)process.
        self.uncommitted = {p: o for p, o in self.uncommitted.items() if p in self._assigned}
        log.info("partitions assigned", partitions=sorted(self._assigned))
        rewound = self._rewind_to_redis(consumer, partitions)
        if rewound:
            consumer.assign(rewound)
        self._settle_journal(sorted(self._assigned))

    def _settle_journal(self, partitions: list[int]) -> None:
        """Alerts a dead owner of these partitions sent without recording their state: settle them."""
        found, unsent = self._retrying(
            lambda: self.journal.settle(partitions, self._delivered_alerts, self.buffer.update_meta), "redis"
        )
        if found or unsent:
            log.warning("settled the alert journal of a previous owner", delivered=found, never_sent=unsent)

    def _delivered_alerts(self, since_ms: int) -> set[str]:
        """alert ids in the alerts topic stamped since ``since_ms`` (committed ones only)."""
        group = f"{self.settings.stream.group_id}-journal"
        consumer = make_consumer(self.settings, group, **{"isolation.level": "read_committed",
                                                           "enable.partition.eof": True})
        try:
            messages = self._retrying_kafka(
                lambda: list(read_since(consumer, self.settings.topics.alerts, since_ms - JOURNAL_SLACK_MS))
            )
        finally:
            consumer.close()
        ids = set()
        for msg in messages:
            try:
                ids.add(orjson.loads(msg.value())["alert_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # not one of ours
        return ids

    def _rewind_to_redis(self, consumer, partitions: list[TopicPartition]) -> list[TopicPartition] | None:
        """Start below the committed offset where Redis lost acknowledged writes.

        Redis persists its AOF once a second: a machine crash can lose the last second of writes
        after their offsets were committed. Redis's own applied offsets roll back with the data
        (same transaction), so resuming at ``min(committed, applied + 1)`` re-applies what was lost.
        """
        if not partitions:
            return None
        applied = self._retrying(self.buffer.partition_offsets, "redis")
        committed = self._retrying(lambda: consumer.committed(partitions, timeout=30), "kafka")
        starts, moved = resume_offsets({tp.partition: tp.offset for tp in committed}, applied)
        if not moved:
            return None
        log.warning("Redis is behind the committed offsets (lost its last writes?): re-reading",
                    partitions=[{"partition": p, "committed": c, "from": f} for p, c, f in moved])
        return [TopicPartition(self.topic, p, o) for p, o in sorted(starts.items())]

    def _on_revoke(self, _consumer, partitions: list[TopicPartition]) -> None:
        # Finish and commit what was consumed before the partitions go to another member.
        log.info("partitions revoked", partitions=sorted(tp.partition for tp in partitions))
        if self._failed:
            return  # closing after an error: leave the uncommitted batch to be re-read
        self.ready.release_due(time.monotonic(), everything=True)
        try:
            self._finish_cycle()
        except Stopped:
            log.error("could not commit before revocation; the new owner re-reads (idempotently)")
            self._abort_open_transaction()
        self._assigned -= {tp.partition for tp in partitions}
        self._forget_lag({tp.partition for tp in partitions})

    def _forget_lag(self, partitions: set[int]) -> None:
        """A partition gone elsewhere reports its lag from there; a stale value here would add up."""
        for p in partitions:
            try:
                self.metrics.lag.remove(str(p))
            except KeyError:
                pass

    def _on_lost(self, _consumer, partitions: list[TopicPartition]) -> None:
        lost = {tp.partition for tp in partitions}
        log.warning("partitions lost without a chance to commit", partitions=sorted(lost))
        self._assigned -= lost
        self._forget_lag(lost)
        for p in lost:
            self.uncommitted.pop(p, None)
        # Their new owner scores these sensors and keeps their alert state: write nothing for them.
        self.ready.drop_partitions(lost)
        for sensor_id, partition in list(self._scored_partition.items()):
            if partition in lost:
                self._scored_meta.pop(sensor_id, None)
        for p in lost:  # their journal entries are the new owner's to settle
            self._journaled.pop(p, None)
        self._abort_open_transaction()

    def _abort_open_transaction(self) -> None:
        """exactly-once: records of partitions gone elsewhere must not become visible with the next
        commit (their new owner scores those events again): abort and re-read what stays ours."""
        if self.exactly_once and self.publisher.in_transaction:
            self.publisher.abort(self._retrying_kafka)
            self._rewind_after_abort()

    # -- helpers -------------------------------------------------------------------------------
    def _subscribe(self, settings: VigilSettings):
        """Promotion announcements (trainer job); without Redis now, polling the pointer suffices."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(announcement_channel(settings.redis.key_prefix))
        except redis.RedisError as exc:
            log.warning("no model announcements; polling the pointer only", error=str(exc))
            return None
        return pubsub

    def _retrying(self, action, dependency: str):
        result = retrying(action, dependency, self.stop_event, self._on_retry,
                          self.settings.stream.retry_max_backoff.total_seconds())
        # A Redis call that succeeds proves Redis is back. A Kafka call may succeed without the
        # broker (a flush with nothing to send): Kafka is back once it has been quiet (_cycle).
        if dependency == "redis":
            self.health.set(dependency, None)
        return result

    def _retrying_kafka(self, action):
        return self._retrying(action, "kafka")

    def _on_retry(self, dependency: str) -> None:
        if dependency == "kafka":
            self._kafka_error_at = time.monotonic()
        self.metrics.retries.labels(dependency).inc()
        self.health.set(dependency, "unavailable, retrying")
        self.health.beat()

    def _consumer_error(self, err: KafkaError) -> None:
        if err.fatal():
            raise KafkaException(err)
        self._kafka_error(err)

    def _kafka_error(self, err: KafkaError) -> None:
        self._kafka_error_at = time.monotonic()
        self.metrics.retries.labels("kafka").inc()
        self.health.set("kafka", err.str())
        log.warning("kafka unavailable, librdkafka keeps retrying", error=err.str())

    def _model_check(self) -> None:
        if self.models is None:
            return
        active = self.models.poll()
        if active is not None and active.version != self._model_version:
            self._model_version = active.version
            self.metrics.model_swaps.inc()
            self.metrics.model_version.clear()
            self.metrics.model_version.labels(active.version).set(1)
            self.health.set("model", None)

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now < self._next_lag or not self._assigned:
            return
        self._next_lag = now + LAG_EVERY_S
        tps = [TopicPartition(self.topic, p) for p in sorted(self._assigned)]
        try:
            for tp in self.consumer.position(tps):
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and high >= 0:
                    self.metrics.lag.labels(str(tp.partition)).set(max(high - tp.offset, 0))
        except KafkaException as exc:
            log.debug("lag unavailable", error=str(exc))
