"""The silence watch (streamer/silence.py): a sensor is alerted once when its partition's event time
has moved ``silent_bins`` bins past its newest event, and cleared when it sends again."""

from __future__ import annotations

import json

import orjson

from vigil.buffer import SensorState
from vigil.buffer import meta as sensor_meta
from vigil.events.outputs import AlertRecord, alert_id
from streamer.cycle import Cycle
from streamer.silence import SilenceWatch

BIN = 3_600_000
T0 = 1_767_225_600_000


def kinds(changes) -> list[tuple[str, str]]:
    return [(c.kind, c.sensor_id) for c in changes]


def test_a_sensor_is_alerted_once_after_silent_bins_of_partition_time_not_before():
    watch = SilenceWatch(silent_bins=6, bin_ms=BIN)
    watch.observe(0, "quiet", T0, n_events=40)
    watch.observe(0, "busy", T0)
    assert watch.take() == []
    watch.observe(0, "busy", T0 + 6 * BIN - 1)
    assert watch.take() == []
    watch.observe(0, "busy", T0 + 6 * BIN)
    [change] = watch.take()
    assert (change.kind, change.sensor_id, change.partition, change.newest_ms, change.n_events) == (
        "alert", "quiet", 0, T0, 40)
    assert change.meta() == {sensor_meta.SILENT_ID: change.alert_id, sensor_meta.SILENT_END: str(T0)}
    watch.observe(0, "busy", T0 + 20 * BIN)
    assert watch.take() == [], "alerted silent once, not again while it stays silent"


def test_a_silent_sensor_that_sends_again_is_cleared_and_can_go_silent_again():
    watch = SilenceWatch(silent_bins=2, bin_ms=BIN)
    watch.observe(0, "s", T0)
    watch.observe(0, "other", T0 + 2 * BIN)
    [opened] = watch.take()
    watch.observe(0, "s", T0)  # a redelivery of what it had already sent: not back
    assert watch.take() == []
    watch.observe(0, "s", T0 + 3 * BIN, n_events=41)
    [cleared] = watch.take()
    assert (cleared.kind, cleared.sensor_id, cleared.clears, cleared.newest_ms) == ("cleared", "s", opened.alert_id,
                                                                                    T0 + 3 * BIN)
    assert cleared.alert_id not in (opened.alert_id, "")
    assert cleared.meta() == {sensor_meta.SILENT_ID: "", sensor_meta.SILENT_END: "0"}
    watch.observe(0, "other", T0 + 5 * BIN)
    [again] = watch.take()
    assert (again.kind, again.sensor_id, again.newest_ms) == ("alert", "s", T0 + 3 * BIN)


def test_a_sensor_that_keeps_sending_is_never_silent():
    watch = SilenceWatch(silent_bins=2, bin_ms=BIN)
    for hour in range(48):
        watch.observe(0, "a", T0 + hour * BIN)
        watch.observe(0, "b", T0 + hour * BIN + 1)
        assert watch.take() == []


def test_another_partitions_time_does_not_count():
    watch = SilenceWatch(silent_bins=2, bin_ms=BIN)
    watch.observe(0, "quiet", T0)
    watch.observe(1, "elsewhere", T0 + 100 * BIN)
    assert watch.take() == []
    assert watch.partition_ms == {0: T0, 1: T0 + 100 * BIN}
    watch.observe(0, "neighbour", T0 + 2 * BIN)
    assert kinds(watch.take()) == [("alert", "quiet")]


def test_silent_bins_zero_is_off():
    watch = SilenceWatch(silent_bins=0, bin_ms=BIN)
    assert not watch.enabled
    watch.observe(0, "quiet", T0)
    watch.observe(0, "busy", T0 + 1000 * BIN)
    assert watch.take() == [] and len(watch) == 0 and watch.unseen({"quiet": _state("quiet", 0, 1)}) == []


def test_dropped_partitions_forget_their_sensors():
    watch = SilenceWatch(silent_bins=2, bin_ms=BIN)
    watch.observe(0, "p0", T0)
    watch.observe(1, "p1", T0)
    watch.drop_partitions({0})
    assert watch.unseen({"p0": _state("p0", 0, 1), "p1": _state("p1", 1, 1)}) == ["p0"] and 0 not in watch.partition_ms
    watch.observe(1, "busy", T0 + 2 * BIN)
    assert kinds(watch.take()) == [("alert", "p1")]
    watch.keep_partitions({2})
    assert len(watch) == 0 and watch.partition_ms == {}
    # Seen again after its partition came back: it is watched afresh, from this observation.
    watch.observe(0, "p0", T0)
    watch.observe(0, "busy", T0 + BIN)
    assert watch.take() == []


def test_a_silence_recorded_in_the_meta_is_not_alerted_again_and_clears_on_the_next_event():
    first = SilenceWatch(silent_bins=2, bin_ms=BIN)
    first.observe(0, "s", T0)
    first.observe(0, "busy", T0 + 2 * BIN)
    [opened] = first.take()
    known = {"s": (opened.alert_id, T0)}
    # A restart that re-reads the sensor's old events: already alerted, nothing to send.
    restarted = SilenceWatch(silent_bins=2, bin_ms=BIN)
    assert restarted.unseen({"s": _state("s", 0, 40), "busy": _state("busy", 0, 50)}) == ["s", "busy"]
    restarted.observe_states([SensorState("s", 0, 40, T0, 0), SensorState("busy", 0, 50, T0 + 9 * BIN, 0)], known)
    assert restarted.take() == []
    # Another restart, where the sensor has sent again meanwhile: the alert clears.
    back = SilenceWatch(silent_bins=2, bin_ms=BIN)
    back.observe(0, "s", T0 + 9 * BIN, n_events=41, known=known["s"])
    [cleared] = back.take()
    assert (cleared.kind, cleared.clears) == ("cleared", opened.alert_id)


def test_a_silent_sensors_ids_are_deterministic_and_apart_from_score_alerts():
    def opened() -> str:
        watch = SilenceWatch(silent_bins=1, bin_ms=BIN)
        watch.observe(0, "s", T0, n_events=7)
        watch.observe(0, "busy", T0 + BIN)
        return watch.take()[0].alert_id

    assert opened() == opened()
    assert opened() not in {alert_id("s", T0, 7, v, k) for v in ("", "v1") for k in ("alert", "cleared")}


def test_silence_records_are_alert_records_with_reason_silent():
    watch = SilenceWatch(silent_bins=1, bin_ms=BIN)
    watch.observe(0, "s", T0, n_events=7)
    watch.observe(0, "busy", T0 + BIN)
    [opened] = watch.take()
    out = opened.outgoing("alerts", threshold=3.0, model_version="v1", window_ms=240 * BIN, now_ms=T0 + 5)
    record = AlertRecord.model_validate(json.loads(out.value))
    assert (out.topic, out.key) == ("alerts", b"s")
    assert record == AlertRecord(alert_id=opened.alert_id, kind="alert", reason="silent", sensor_id="s",
                                 window_start=T0 - 240 * BIN, window_end=T0, n_events=7, score=0.0, threshold=3.0,
                                 model_version="v1", scored_at=T0 + 5, explanation=None)
    watch.observe(0, "s", T0 + BIN + 1, n_events=8)
    [cleared] = watch.take()
    value = orjson.loads(cleared.outgoing("alerts", 3.0, "v1", 240 * BIN, T0 + 6).value)
    assert (value["kind"], value["reason"], value["clears"]) == ("cleared", "silent", opened.alert_id)
    pending = opened.pending(T0 + 5)
    assert (pending.alert_id, pending.sensor_id, pending.fields) == (opened.alert_id, "s", opened.meta())


def test_a_cycle_writes_silence_state_with_the_scores_and_drops_it_with_its_partition():
    cycle = Cycle()
    cycle.add_scored("s", 0, {sensor_meta.PENDING: 0}, T0)
    cycle.add_silence("s", 0, {sensor_meta.SILENT_ID: "x", sensor_meta.SILENT_END: str(T0)})
    cycle.add_silence("t", 1, {sensor_meta.SILENT_ID: "y", sensor_meta.SILENT_END: str(T0)})
    cycle.add_silence("t", 1, {sensor_meta.SILENT_ID: "", sensor_meta.SILENT_END: "0"})
    assert cycle.meta_to_write() == {
        "s": {sensor_meta.PENDING: 0, sensor_meta.SILENT_ID: "x", sensor_meta.SILENT_END: str(T0)},
        "t": {sensor_meta.SILENT_ID: "", sensor_meta.SILENT_END: "0"},
    }
    assert cycle.window_ends == [T0], "a silence alert is no scored window"
    cycle.drop_partitions({1})
    assert set(cycle.meta_to_write()) == {"s"}


def _state(sensor_id: str, partition: int, n_stored: int, newest_ms: int = T0) -> SensorState:
    return SensorState(sensor_id=sensor_id, partition=partition, n_stored=n_stored, newest_ms=newest_ms, pending=0)


def test_a_sensor_with_fewer_events_than_scoring_needs_is_not_watched():
    # A flood of made-up ids (one event each) costs no memory and raises no silence alert.
    watch = SilenceWatch(silent_bins=2, bin_ms=BIN, min_events=10)
    watch.observe_states([_state(f"junk-{i}", 0, 1) for i in range(100)] + [_state("real", 0, 10)], {})
    assert len(watch) == 1
    watch.observe(0, "busy", T0 + 3 * BIN, 50)
    assert kinds(watch.take()) == [("alert", "real")]


def test_a_silent_sensor_that_returns_with_few_events_in_its_window_is_cleared():
    # Its old bins left the window while it was away: fewer events than the watch needs, but its
    # meta says it is alerted silent, so its return clears the alert.
    watch = SilenceWatch(silent_bins=2, bin_ms=BIN, min_events=10)
    assert watch.unseen({"back": _state("back", 0, 1)}) == ["back"]
    watch.observe_states([_state("back", 0, 1, T0 + 9 * BIN)], {"back": ("a" * 32, T0)})
    [cleared] = watch.take()
    assert (cleared.kind, cleared.sensor_id, cleared.clears) == ("cleared", "back", "a" * 32)
