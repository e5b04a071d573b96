"""Stage 5: a scored batch → what the cycle sends and later writes, as a pure step.

:func:`plan_batch` takes the batch's scored windows, the cycle's uncommitted state, the model's
threshold and version, the alert policy and the time, and returns a :class:`BatchPlan`: the
records to send (each window's score record, then the policy's alert or cleared record if it
decided one), the alert journal's entries per partition, and the meta each sensor writes once the
records are acknowledged. It does no I/O, so it is unit-tested on its own (tests/unit/
test_streamer_logic.py); the streamer journals, sends and records the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from vigil.alerts import AlertPolicy, AlertStates, ScoredPoints, ScoredWindow
from vigil.buffer import meta as sensor_meta
from vigil.events.outputs import AlertRecord, ScoreRecord
from vigil.settings import TopicSettings
from streamer.cycle import Cycle
from streamer.journal import PendingAlert
from streamer.publish import Outgoing


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


def plan_batch(windows: list[ScoredWindow], partition_of: Mapping[str, int], cycle: Cycle, *, threshold: float,
               version: str, policy: AlertPolicy, topics: TopicSettings, now_ms: int) -> BatchPlan:
    """The batch's records, journal entries and meta, the policy decided over the batch at once.
    A sensor scored earlier in the cycle starts from the meta that score left, not yet in Redis;
    one scored twice in the batch goes on from its first score (``AlertPolicy.decide_many``)."""
    plan = BatchPlan()
    if not windows:
        return plan
    points = ScoredPoints.of(windows)
    before = AlertStates.from_metas([{**w.meta, **(cycle.unsaved_meta(w.sensor_id) or {})} for w in windows])
    decided = policy.decide_many(points, before, threshold, version, now_ms)
    alert, warming = (points.score >= threshold).tolist(), policy.warming_up_many(points).tolist()
    for i, (window, state) in enumerate(zip(windows, decided.states.to_metas())):
        key = window.sensor_id.encode()
        score = ScoreRecord(sensor_id=window.sensor_id, window_start=window.window_start, window_end=window.window_end,
                            n_events=window.n_events, score=window.score, threshold=threshold, alert=alert[i],
                            warming_up=warming[i], model_version=version, scored_at=now_ms,
                            explanation=window.explanation, heads=window.heads)
        plan.records.append(Outgoing(topics.scores, key, score.model_dump_json().encode()))
        partition = partition_of[window.sensor_id]
        record = decided.records.get(i)
        if record is not None:
            plan.records.append(Outgoing(topics.alerts, key, record.model_dump_json().encode()))
            plan.decided.append((window, record))
            plan.journal.setdefault(partition, []).append(PendingAlert(record.alert_id, window.sensor_id, now_ms, state))
        why = window.explanation.model_dump_json() if window.explanation is not None else None
        plan.scored.append(ScoredMeta(window.sensor_id, partition, {**sensor_meta.scored(window.window_end, why), **state},
                                      window.window_end))
    return plan
