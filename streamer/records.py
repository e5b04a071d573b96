"""Stage 5: a scored batch → what the cycle sends and later writes, as a pure step.

:func:`plan_batch` takes the batch's scored windows, the cycle's uncommitted state, the model's
threshold and version, the alert policy and the time, and returns a :class:`BatchPlan`: the
records to send (each window's score record, then the policy's alert or cleared record if it
decided one), the alert journal's entries per partition, and the meta each sensor writes once the
records are acknowledged. It does no I/O, so it is unit-tested on its own (tests/unit/
test_streamer_logic.py); the streamer journals, sends and records the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import orjson

from vigil.alerts import AlertPolicy, AlertState, ScoredWindow
from vigil.buffer import meta as sensor_meta
from vigil.events.outputs import AlertRecord, ScoreRecord
from vigil.settings import TopicSettings
from streamer.cycle import Cycle
from streamer.journal import PendingAlert
from streamer.publish import Outgoing


@dataclass(frozen=True)
class WindowRecords:
    records: list[Outgoing]  # the score, then the alert or cleared record if the policy decided one
    alert: AlertRecord | None
    alert_state: dict[str, str]  # the sensor's alert state after this score, for its meta


@dataclass(frozen=True)
class ScoredMeta:
    """What one score leaves for the sensor's meta, written once the cycle's records are acknowledged."""

    sensor_id: str
    partition: int
    meta: dict[str, str | int]
    window_end: int


@dataclass
class BatchPlan:
    records: list[Outgoing] = field(default_factory=list)  # in send order
    journal: dict[int, list[PendingAlert]] = field(default_factory=dict)  # partition → alerts to journal first
    scored: list[ScoredMeta] = field(default_factory=list)  # in window order
    decided: list[tuple[ScoredWindow, AlertRecord]] = field(default_factory=list)  # for logs and metrics


def build_records(window: ScoredWindow, threshold: float, version: str, policy: AlertPolicy,
                  topics: TopicSettings, now_ms: int) -> WindowRecords:
    score = ScoreRecord(sensor_id=window.sensor_id, window_start=window.window_start, window_end=window.window_end,
                        n_events=window.n_events, score=window.score, threshold=threshold,
                        alert=window.score >= threshold, warming_up=policy.warming_up(window),
                        model_version=version, scored_at=now_ms, explanation=window.explanation,
                        heads=window.heads)
    key = window.sensor_id.encode()
    records = [Outgoing(topics.scores, key, orjson.dumps(score.model_dump()))]
    decision = policy.decide(window, AlertState.from_meta(window.meta), threshold, version, now_ms)
    if decision.record is not None:
        records.append(Outgoing(topics.alerts, key, orjson.dumps(decision.record.model_dump())))
    return WindowRecords(records, decision.record, decision.state.to_meta())


def plan_batch(windows: list[ScoredWindow], partition_of: Mapping[str, int], cycle: Cycle, *, threshold: float,
               version: str, policy: AlertPolicy, topics: TopicSettings, now_ms: int) -> BatchPlan:
    """The batch's records, journal entries and meta. A sensor scored earlier in the cycle (or the
    batch) continues from the meta that score left, not yet in Redis: its alert state goes on."""
    plan = BatchPlan()
    left: dict[str, dict] = {}  # this plan's meta per sensor so far, over the cycle's
    for window in windows:
        unsaved = {**(cycle.unsaved_meta(window.sensor_id) or {}), **left.get(window.sensor_id, {})}
        if unsaved:
            window = replace(window, meta={**window.meta, **unsaved})
        built = build_records(window, threshold, version, policy, topics, now_ms)
        plan.records += built.records
        partition = partition_of[window.sensor_id]
        if built.alert is not None:
            plan.decided.append((window, built.alert))
            plan.journal.setdefault(partition, []).append(
                PendingAlert(built.alert.alert_id, window.sensor_id, now_ms, built.alert_state))
        why = window.explanation.model_dump_json() if window.explanation is not None else None
        meta = {**sensor_meta.scored(window.window_end, why), **built.alert_state}
        left[window.sensor_id] = {**left.get(window.sensor_id, {}), **meta}
        plan.scored.append(ScoredMeta(window.sensor_id, partition, meta, window.window_end))
    return plan
