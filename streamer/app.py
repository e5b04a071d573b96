"""``Streamer``: composes the data path's stages into one loop (docs/architecture.md).

Each consume call is decoded at once (bad messages → DLQ); its valid events wait in
``PendingEvents`` while the consumer is behind, so that the next calls' events of the same sensors
share their buffer write, and are applied to Redis when it has caught up (or enough wait); while
it is behind, the next calls may be read and decoded during the apply (``stream.read_ahead``,
``streamer/ahead.py``). With a
scoring cadence (``stream.score_every``, the default) the apply stops at each scoring point and
the windows standing there are scored before the rest is applied; with ``score_every`` 0 a new
event makes its window ready, and ready windows are scored ``max_batch_windows`` at a time or when
the oldest has waited ``max_wait``. A *cycle* ends when nothing waits; the delivery protocol
(``streamer/delivery.py``) then makes it durable: records acknowledged (or committed in a
transaction), then the scored state written to Redis, then the offsets committed. A crash
anywhere re-reads uncommitted messages, which the buffer ignores where it already applied them;
the alert journal keeps an alert from being published twice.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from vigil.alerts import AlertPolicy, ScoredWindow
from vigil.buffer import BufferLayout, Cadence, RollingBuffer, ScoringPoints, SensorState
from vigil.events.decode import EventDecoder
from vigil.events.schema import EventSchema
from vigil.kafka.clients import error_code, make_consumer, make_producer
from vigil.logging import get_logger
from vigil.registry import ModelRegistry
from vigil.redis_client import connect
from vigil.settings import VigilSettings
from streamer.ahead import ReadAhead
from streamer.cycle import Cycle
from streamer.delivery import Outcome, delivery_for
from streamer.health import Health, serve
from streamer.ingest import DeadLetter, Ingested, PendingEvents, split_messages, too_old_letters
from streamer.journal import AlertJournal, PendingAlert, alerts_delivered_since
from streamer.metrics import StreamMetrics
from streamer.model_watch import ModelWatcher, model_announcements
from streamer.readiness import ReadySet
from streamer.rebalance import Rebalance, rewind_to_committed
from streamer.records import plan_batch
from streamer.retry import Retrier, Stopped
from streamer.scoring import ModelThread, finish_batch, prepare_batch
from streamer.silence import SilenceChange, SilenceWatch, read_silences

log = get_logger("streamer")

LAG_EVERY_S = 5.0


@dataclass(frozen=True, kw_only=True)
class StreamerStatus:
    """What benches, tests and operators may read of a running streamer."""

    assigned: frozenset[int]  # events partitions this replica owns
    pending_offsets: dict[int, int]  # partition → last offset consumed, not yet committed
    unapplied_events: int  # decoded, not yet applied to the buffers
    ready: int  # sensors whose window waits to be scored (stream.score_every 0)
    unsaved_scores: int  # windows scored this cycle whose state is not yet in Redis
    model_version: str | None


class Streamer:
    def __init__(self, settings: VigilSettings, registry: ModelRegistry | None = None, *,
                 consumer: Consumer | None = None, producer: Producer | None = None,
                 redis_client: redis.Redis | None = None):
        """Clients default to ones built from ``settings``; pass them to wrap or observe them."""
        s = self.settings = settings
        self.stop_event = threading.Event()
        self.metrics = StreamMetrics()
        self.health = Health()
        self.retry = Retrier(self.stop_event, self.health, self.metrics.retries, s.stream.retry_max_backoff.total_seconds())
        self.topic = s.topics.events
        layout = BufferLayout.from_settings(s)
        self.redis = redis_client or connect(s, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30)
        self.buffer = RollingBuffer(self.redis, layout, self.topic)
        self.journal = AlertJournal(self.redis, layout, self.topic)
        self.decoder = EventDecoder(EventSchema(s.features, s.label_column), s.stream.max_event_bytes)
        self.consumer = consumer or self._default_consumer()
        self.delivery = delivery_for(s.stream.delivery, producer or self._default_producer(), self.consumer,
                                     self.topic, self.stop_event, self.retry)
        self.cadence = Cadence.from_settings(s)
        self.ready = ReadySet(s.window.min_events)
        self.alerts = AlertPolicy(s.alerts, layout.window_ms, layout.bin_ms)
        self.silence = SilenceWatch(s.alerts.silent_bins if s.stream.scoring else 0, layout.bin_ms, s.window.min_events)
        self.models = (
            ModelWatcher(registry or ModelRegistry(s.models_path), s.features, layout.window_ms,
                         s.stream.max_batch_windows, s.stream.model_poll.total_seconds(),
                         model_announcements(self.redis, s.redis.key_prefix), bin_ms=layout.bin_ms)
            if s.stream.scoring else None
        )
        self.rebalance = Rebalance(self.topic, self.buffer, self.journal, self.retry, self.metrics.lag,
                                   alerts_delivered_since(s, self.retry), work=self)
        self.cycle = Cycle()
        self.model_calls = ModelThread(s.stream.overlap, s.stream.overlap_min_windows)
        self.pending = PendingEvents(len(s.features))
        self.ahead = ReadAhead(self.consumer, self._decode, self._take_decoded) if s.stream.read_ahead else None
        self._next_lag = 0.0
        self._model_version: str | None = None
        self._server = None

    def _default_consumer(self) -> Consumer:
        s = self.settings.stream
        # With an instance id, membership is static: a restarted replica gets its partitions back
        # at once instead of after the session timeout.
        static = {"group.instance.id": s.instance_id} if s.instance_id else {}
        return make_consumer(self.settings, s.group_id, error_cb=self.retry.kafka_error, **static)

    def _default_producer(self) -> Producer:
        s = self.settings.stream
        transactional = {"transactional.id": s.transactional_id()} if s.delivery == "exactly-once" else {}
        return make_producer(self.settings, **{"linger.ms": 5, "error_cb": self.retry.kafka_error}, **transactional)

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self) -> int:
        """Until :meth:`stop`: returns 0 after a clean drain, 1 if a dependency stayed away."""
        s = self.settings.stream
        if s.metrics_port:
            self._server = serve(s.metrics_host, s.metrics_port, self.metrics.registry, self.health)
        self.delivery.start()
        r = self.rebalance
        guard = self.ahead.callback if self.ahead is not None else (lambda fn: fn)
        self.consumer.subscribe([self.topic], on_assign=guard(r.on_assign), on_revoke=guard(r.on_revoke),
                                on_lost=guard(r.on_lost))
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
        code, failed = 0, False
        try:
            while not self.stop_event.is_set():
                self._cycle()
            self.finish_before_revocation()
        except Stopped as exc:
            failed = True
            log.error("stopping before the last batch was committed; it will be re-read (idempotently)",
                      dependency=str(exc))
            code = 1
        except BaseException:
            failed = True  # whatever was taken for scoring is lost: re-read it, do not commit
            raise
        finally:
            self._close(failed)
        log.info("stopped", exit_code=code)
        return code

    def stop(self) -> None:
        self.stop_event.set()

    def status(self) -> StreamerStatus:
        return StreamerStatus(assigned=frozenset(self.rebalance.assigned),
                              pending_offsets={**self.cycle.offsets, **self.pending.last_offsets},
                              unapplied_events=len(self.pending),
                              ready=len(self.ready), unsaved_scores=len(self.cycle.window_ends),
                              model_version=self._model_version)

    def _close(self, failed: bool) -> None:
        self.rebalance.closing_after_error = failed  # then the revocation commits nothing: re-read it
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("consumer close failed", error=str(exc))
        self.delivery.close(failed)
        self.model_calls.close()
        if self.ahead is not None:
            self.ahead.close()
        if self.models is not None:
            self.models.close()
        if self._server is not None:
            self._server.shutdown()

    # -- one cycle -----------------------------------------------------------------------------
    def _cycle(self) -> None:
        s = self.settings.stream
        apply_wait = s.apply_wait.total_seconds()
        backlogged = carry = False
        while not self.stop_event.is_set():
            self.health.beat()
            if self.model_calls.done():  # the batch predicted meanwhile: its records leave now
                self._send_scored()
            # A full batch is scored at once, unless the consumer is behind: then waiting until
            # the deadline lets more of each sensor's events share one score (a sensor is scored
            # once per batch, at its newest event), which is what lets the stream catch up.
            while len(self.ready) >= s.max_batch_windows and not backlogged:
                self._score_batch(self.ready.take(s.max_batch_windows))
            now = time.monotonic()
            timeout = self._deadline(now) - now
            if self.ready and timeout <= 0:
                break
            messages = self.consumer.consume(s.poll_events, self._consume_timeout(now, backlogged))
            backlogged = len(messages) >= s.poll_events
            if messages:
                self._take(messages)
            read_ahead = False
            if self.pending.due(time.monotonic(), limit=s.apply_events, wait_s=apply_wait, behind=backlogged):
                read_ahead = backlogged and self.ahead is not None
                if read_ahead:
                    backlogged = self._apply_reading_ahead(max(timeout, 0.0))
                else:
                    self._apply_pending()
            self.retry.kafka_settled()
            if not self.ready and (not self.pending or read_ahead) and (self.cycle.offsets or not messages):
                # Nothing waits to be scored: make what was applied durable now. Events read
                # ahead wait for the next cycle's apply (their offsets are not this cycle's).
                carry = read_ahead
                break
        self._finish_cycle(apply_pending=not carry)
        self._model_check()
        self._report_lag()

    def _deadline(self, now: float) -> float:
        """When the cycle stops waiting for events: the batch deadline, which counts from the
        longest-waiting ready window and from the oldest decoded event not yet applied, and at
        most half a ``max_wait`` from now (an event that arrives while a consume call fills waits
        in it; at 25,000 events/s, 5,000 take 200 ms to come)."""
        s = self.settings.stream
        max_wait, apply_wait = s.max_wait.total_seconds(), s.apply_wait.total_seconds()
        deadlines = [t + wait for t, wait in ((self.ready.first_ready_at, max_wait), (self.pending.since, apply_wait))
                     if t is not None]
        return min([*deadlines, now + max_wait / 2])

    def _consume_timeout(self, now: float, backlogged: bool) -> float:
        """How long the next consume call may wait for its ``poll_events``: until the deadline,
        and not at all when decoded events are due already (events read ahead by the last apply,
        the consumer having caught up meanwhile)."""
        s = self.settings.stream
        if self.pending.due(now, limit=s.apply_events, wait_s=s.apply_wait.total_seconds(), behind=backlogged):
            return 0.0
        return max(self._deadline(now) - now, 0.0)

    def _take(self, messages: list) -> None:
        self._take_decoded(self._decode(messages), len(messages))

    def _decode(self, messages: list) -> Ingested:
        """Stage 1: decode; invalid messages become dead letters."""
        horizon = int(time.time() * 1000 + self.settings.stream.max_future.total_seconds() * 1000)
        return split_messages(messages, self.decoder, horizon)

    def _take_decoded(self, got: Ingested, n_messages: int) -> None:
        """Stage 1's result: dead letters out; the valid events wait to be applied with the next ones."""
        for err in got.errors:
            if err.fatal():
                raise KafkaException(err)
            self.retry.kafka_error(err)
        self.metrics.consumed.inc(n_messages - len(got.errors))
        for dead in got.dead:
            self._dead_letter(dead)
        self.pending.add(got, time.monotonic())

    def _apply_pending(self) -> None:
        """Stages 2-3: apply the decoded events to the buffers (scoring the windows at the points
        they reach), offer ready windows."""
        pending = self.pending  # still reported as pending (status) until applied
        model = self.models.active if self.models is not None else None
        points = (ScoringPoints(self.cadence, self.settings.window.min_events, self._score_points)
                  if self.cadence.enabled and model is not None else None)
        result = self.retry(lambda: self.buffer.apply(pending.batch, points), "redis")
        self.pending = PendingEvents(len(self.settings.features))
        self.metrics.count_applied(result)
        if result.too_old:  # nothing valid vanishes: the producer learns its events came too late
            for dead in too_old_letters(pending.sources, result.too_old, self.buffer.layout.window_ms):
                self._dead_letter(dead)
        for sensor_id, partition in result.other_partition:
            self.metrics.sensor_on_second_partition(sensor_id, partition)
        self.cycle.add_ingested(pending.last_offsets, max(pending.newest_record_ms, default=None))
        if model is not None and points is None:
            self.ready.offer(result.states, time.monotonic())
        if self.silence.enabled and result.states:
            self._watch_silence(result.states)

    def _apply_reading_ahead(self, timeout: float) -> bool:
        """:meth:`_apply_pending` while the next consume calls are read and decoded (``ReadAhead``);
        their events join the pending ones. Returns whether the consumer is still behind."""
        sensors: set[str] = set()
        limit = self.settings.stream.apply_events

        def enough(n_messages: int, got: Ingested) -> bool:
            sensors.update(got.batch.sensor_ids)
            return PendingEvents.enough(n_messages, len(sensors), limit)

        _, full = self.ahead.during(self._apply_pending, num=self.settings.stream.poll_events, timeout=timeout,
                                    enough=enough)
        self.ahead.hand_over()
        return full is not False

    def _score_points(self, states: list[SensorState]) -> None:
        """The windows standing at their scoring points, scored before their sensors' later events
        are applied. A point this cycle already scored (the apply repeated after a Redis error) is
        not scored twice."""
        fresh = [state for state in states if state.newest_ms not in (self.cycle.scored_end(state.sensor_id),
                                                                     self.model_calls.window_end(state.sensor_id))]
        size = self.settings.stream.max_batch_windows
        for at in range(0, len(fresh), size):
            self._score_batch(fresh[at:at + size])

    def _score_batch(self, states: list[SensorState]) -> None:
        """Stages 3-4: read and featurise one batch, then start its model call (in the second
        thread with ``stream.overlap``); the batch before it leaves first (:meth:`_send_scored`)."""
        model = self.models.active if self.models is not None else None
        if not states or model is None:
            return
        t0 = time.perf_counter()
        min_events = self.settings.window.min_events
        prepared = self.retry(lambda: prepare_batch(self.buffer, model, states, min_events), "redis")
        self._send_scored()
        if prepared is None:
            return
        if not self.model_calls.submit(prepared, ({state.sensor_id: state.partition for state in states}, t0)):
            self._send_scored()  # called here (no overlap, or a small batch): it leaves at once

    def _send_scored(self) -> None:
        """Stage 5 for the batch whose model call was last started (waiting for it): its windows
        scored, its records sent now; their state is written after the acks."""
        taken = self.model_calls.take()
        if taken is None:
            return
        prepared, output, (partition_of, t0) = taken
        model = prepared.model
        windows = finish_batch(prepared, output)
        self.metrics.scoring_seconds.observe(time.perf_counter() - t0)
        self.metrics.batch_windows.observe(len(windows))
        plan = plan_batch(windows, partition_of, self.cycle, threshold=model.loaded.threshold, version=model.version,
                          policy=self.alerts, topics=self.settings.topics, now_ms=int(time.time() * 1000))
        self.metrics.scores.inc(len(windows))
        for window in windows:
            if window.explanation is not None and window.explanation.head:
                self.metrics.heads.labels(window.explanation.head).inc()
        for window, alert in plan.decided:
            self._log_alert(window, alert, model.loaded.threshold)
        for scored in plan.scored:
            self.cycle.add_scored(scored.sensor_id, scored.partition, scored.meta, scored.window_end)
        self._send_alerts(plan.journal, plan.records)

    def _watch_silence(self, states: dict[str, SensorState]) -> None:
        """Stage 5 for sensors that stopped sending: silence alerts, and their clears, leave like
        score alerts (journaled, sent, their state written with the cycle's)."""
        self.silence.keep_partitions(self.rebalance.assigned)  # revoked partitions' sensors are not ours
        fresh = self.silence.unseen(states)
        known = self.retry(lambda: read_silences(self.redis, self.buffer.layout, fresh), "redis") if fresh else {}
        self.silence.observe_states(states.values(), known)
        changes = self.silence.take()
        if not changes:
            return
        model = self.models.active if self.models is not None else None
        threshold, version = (model.loaded.threshold, model.version) if model is not None else (0.0, "")
        now_ms, window_ms = int(time.time() * 1000), self.buffer.layout.window_ms
        outgoing, journal = [], {}
        for change in changes:
            self._log_silence(change)
            outgoing.append(change.outgoing(self.settings.topics.alerts, threshold, version, window_ms, now_ms))
            journal.setdefault(change.partition, []).append(change.pending(now_ms))
            self.cycle.add_silence(change.sensor_id, change.partition, change.meta())
        self._send_alerts(journal, outgoing)

    def _send_alerts(self, journal: dict[int, list[PendingAlert]], outgoing: list) -> None:
        if journal:  # before the alerts leave: see streamer/journal.py
            self.retry(lambda: self.journal.record(journal), "redis")
            for partition, entries in journal.items():
                self.cycle.add_journaled(partition, [a.alert_id for a in entries])
        for record in outgoing:
            self.delivery.send(record)

    def _finish_cycle(self, apply_pending: bool = True) -> None:
        """Apply what waits (unless told to leave it to the next cycle), score what is still
        ready, then have the delivery protocol make the cycle durable."""
        if self.pending and apply_pending:
            self._apply_pending()
        size = self.settings.stream.max_batch_windows
        while len(self.ready):
            self._score_batch(self.ready.take(size))
        self._send_scored()  # nothing is in flight when the cycle is made durable
        outcome = self.delivery.deliver(self.cycle, self._record_scored)
        if outcome is Outcome.ABORTED:
            self._rewind_after_abort()
            return
        if outcome is Outcome.COMMITTED:
            self.metrics.commits.inc()
            self.metrics.observe_processing(self.cycle.record_ms)
        self.cycle = self.cycle.next(committed=outcome is not Outcome.DEFERRED)

    def finish_before_revocation(self) -> None:
        self._finish_cycle()

    def _record_scored(self) -> None:
        """Stage 6: the cycle's records are in Kafka; write its scored, alert and silence state, clear its journal."""
        cycle = self.cycle
        meta = cycle.meta_to_write()
        if meta:
            self.retry(lambda: self.buffer.update_meta(meta), "redis")
        if cycle.scored:
            self.metrics.observe_event_time_lag(cycle.window_ends)
        self._clear_journal(cycle)

    def _clear_journal(self, cycle: Cycle) -> None:
        """The cycle's journal entries: their state is recorded now, or their records were aborted."""
        if cycle.journaled:
            self.retry(lambda: self.journal.remove(cycle.journaled), "redis")

    # -- partitions gone elsewhere, aborted transactions ------------------------------------------
    def drop_partitions(self, lost: set[int]) -> None:
        self._send_scored()  # its records are the cycle's: dropped or aborted with it below
        self.pending.drop_partitions(lost)
        self.cycle.drop_partitions(lost)
        self.ready.drop_partitions(lost)
        self.silence.drop_partitions(lost)
        self.abort_open_transaction()

    def keep_partitions(self, assigned: set[int]) -> None:
        self._send_scored()
        self.pending.drop_partitions(set(self.pending.last_offsets) - set(assigned))
        self.cycle.keep_partitions(assigned)
        self.silence.keep_partitions(assigned)

    def abort_open_transaction(self) -> None:
        """exactly-once: records of partitions gone elsewhere must not become visible with the next
        commit (their new owner scores those events again): abort and re-read what stays ours."""
        if self.delivery.abort_open():
            self._rewind_after_abort()

    def _rewind_after_abort(self) -> None:
        """After an aborted transaction: forget the cycle and re-read from the committed offsets."""
        self._clear_journal(self.cycle)  # those alerts never became visible
        self.model_calls.discard()  # read in the aborted cycle: scored again when re-read
        self.cycle = Cycle()
        self.pending = PendingEvents(len(self.settings.features))
        assigned = set(self.rebalance.assigned)
        self.ready.drop_partitions(assigned)
        self.silence.drop_partitions(assigned)  # its aborted alerts: decided afresh from the meta when re-read
        rewind_to_committed(self.consumer, self.topic, assigned, self.retry)

    # -- helpers -------------------------------------------------------------------------------
    def _dead_letter(self, dead: DeadLetter) -> None:
        self.metrics.dead_lettered.labels(dead.reason).inc()
        try:
            self.delivery.send(dead.record(self.settings.topics.dlq))
        except KafkaException as exc:
            if error_code(exc) != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            self.delivery.send(dead.record(self.settings.topics.dlq, truncated=True))

    def _log_alert(self, window: ScoredWindow, alert, threshold: float) -> None:
        self.metrics.alerts.labels(alert.kind).inc()
        log.info("alert" if alert.kind == "alert" else "alert cleared", sensor_id=window.sensor_id,
                 score=round(window.score, 4), threshold=round(threshold, 4), alert_id=alert.alert_id)

    def _log_silence(self, change: SilenceChange) -> None:
        self.metrics.alerts.labels(change.kind).inc()
        log.info("sensor silent" if change.kind == "alert" else "silent sensor sent again", sensor_id=change.sensor_id,
                 partition=change.partition, newest_ms=change.newest_ms, alert_id=change.alert_id)

    def _model_check(self) -> None:
        if self.models is None:
            return
        active = self.models.poll()
        if active is not None and active.version != self._model_version:
            self._model_version = active.version
            self.metrics.model_in_use(active.version)
            self.health.set("model", None)
            # TensorFlow and Keras leave about half a million long-lived objects, which every
            # full collection walked: pauses of up to 0.4 s in the loop (bench/README.md,
            # latency.py). Collect once, then move what is left out of the collector's way.
            gc.collect()
            gc.freeze()

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now >= self._next_lag and self.rebalance.assigned:
            self._next_lag = now + LAG_EVERY_S
            self.metrics.record_lag(self.consumer, self.topic, self.rebalance.assigned)
