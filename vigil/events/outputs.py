"""What Vigil publishes (scores, alerts; docs/architecture.md stage 5), as pydantic models.

Times are epoch milliseconds, like the event contract. ``vigil schema scores|alerts|events|dlq``
prints the JSON Schema of each topic, generated from these models.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Headers on every dead-letter record; its value and key are the original message's bytes.
DLQ_HEADERS = {
    "vigil.reason": "stable reason code (see REASONS in vigil/events/schema.py)",
    "vigil.detail": "human-readable detail: which field and what was wrong",
    "vigil.source.topic": "topic the message was read from",
    "vigil.source.partition": "its partition (decimal text)",
    "vigil.source.offset": "its offset (decimal text)",
}
# Present only on some dead letters.
DLQ_OPTIONAL_HEADERS = {
    "vigil.truncated_from": "the original value's length in bytes (decimal text), when the DLQ topic refused "
                            "the whole value and only its first 64 KiB were kept",
}


class FeatureShare(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature: str = Field(description="a feature name, or event_rate for how many events arrived")
    share: float = Field(description="its share (0-1) of the window's departure from normal windows")


class Explanation(BaseModel):
    """Which features and which part of the window drove the score: where the window departs most
    from the normal training windows, per time bin and channel, computed in the same model call
    as the score."""

    model_config = ConfigDict(frozen=True)

    features: list[FeatureShare] = Field(description="the features with the largest shares, largest first")
    span_start: int = Field(description="epoch ms: start of the bins that contribute most")
    span_end: int = Field(description="epoch ms: end of those bins")
    head: str | None = Field(None, description="the detection head with the largest calibrated value: shift, spread, "
                                               "extreme, profile, corr, reference, fleet or autoencoder (also when "
                                               "the pooled joint value scored the window higher; absent for models "
                                               "without heads)")
    text: str | None = Field(None, description="what changed, in words, e.g. 'feature_2 stopped following "
                                               "feature_1: correlation 0.52 → 0.03 over the last 1d12h'")


class WindowRecord(BaseModel):
    """What every record about one scored window carries."""

    model_config = ConfigDict(frozen=True)

    sensor_id: str = Field(description="the sensor; also the record's key")
    window_start: int = Field(description="epoch ms; the window is (window_start, window_end]")
    window_end: int = Field(description="epoch ms of the sensor's newest event in the window")
    n_events: int = Field(description="events in the window")
    score: float = Field(description="the largest calibrated value among the heads and their pooled joint (a "
                                     "z-like scale: about 3 is a 1-in-400 value among normal windows); for models "
                                     "without heads, the latent's reconstruction error")
    threshold: float = Field(description="the model's alert threshold")
    model_version: str = Field(description="the registry version that scored the window")
    scored_at: int = Field(description="epoch ms (wall clock) when the score was computed")
    explanation: Explanation | None = Field(None, description="what drove the score (absent for models "
                                                             "that cannot explain)")


class ScoreRecord(WindowRecord):
    """One scored window: value of a ``sensor-scores`` record (key: sensor_id)."""

    alert: bool = Field(description="score >= threshold (whether an alert opens is the alert policy's call: "
                                    "see sensor-alerts)")
    warming_up: bool = Field(False, description="the sensor's buffered history covers less of the window than "
                                                "alerts.warmup_fraction: the score is published, but cannot alert")
    heads: dict[str, float] | None = Field(None, description="each detection head's calibrated value, and 'joint' "
                                                             "(the heads' evidence pooled, calibrated in turn); the "
                                                             "score is the largest; absent for models without heads")


class AlertRecord(WindowRecord):
    """An alert opened or cleared: value of a ``sensor-alerts`` record (key: sensor_id).

    ``alert_id`` is derived from (sensor, window end, events in the window, model version, kind),
    so a record published twice (e.g. re-scored after a crash) carries the same id and consumers
    can deduplicate, while a late event that changes the window gives a new one. A repeated
    alert (after the cooldown) supersedes the open one; ``cleared`` names the latest. A silence
    alert (``reason="silent"``) is about the sensor's newest event, not a scored window: its id
    leaves the model version out, and it carries no explanation.
    """

    alert_id: str = Field(description="deterministic id (32 hex digits): deduplicate on it")
    kind: Literal["alert", "cleared"] = Field(description="alert: opened (or repeated after the cooldown); "
                                                         "cleared: the score stayed under the clear level "
                                                         "(alerts.clear_ratio x threshold) for alerts.clear_for, "
                                                         "or a silent sensor sent again")
    reason: Literal["score", "silent"] = Field(
        "score", description="score: the alert policy's decision on the window's score; silent: the sensor's "
                             "partition moved alerts.silent_bins bins of event time past its newest event "
                             "(window_end), with score 0 and no explanation")
    clears: str | None = Field(None, description="for kind=cleared: the alert_id it clears")


def alert_id(sensor_id: str, window_end: int, n_events: int, model_version: str, kind: str) -> str:
    digest = hashlib.sha256(f"{sensor_id}\x00{window_end}\x00{n_events}\x00{model_version}\x00{kind}".encode())
    return digest.hexdigest()[:32]
