"""Stage 5's payloads: a scored window → its score record, and the alert policy's record if any."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from vigil.alerts import AlertPolicy, AlertState, ScoredWindow
from vigil.events.outputs import AlertRecord, ScoreRecord
from vigil.settings import TopicSettings
from streamer.publish import Outgoing


@dataclass(frozen=True)
class WindowRecords:
    records: list[Outgoing]  # the score, then the alert or cleared record if the policy decided one
    alert: AlertRecord | None
    alert_state: dict[str, str]  # the sensor's alert state after this score, for its meta


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
