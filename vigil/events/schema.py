"""The sensor event contract (docs/gateways.md; docs/architecture.md stage 1).

``sensor_id`` (string), ``timestamp`` (ISO-8601 or epoch milliseconds), the configured numeric
features and an optional 0/1 label. Unknown fields are ignored. The feature list is configuration,
so the pydantic model is built per :class:`EventSchema`; field names are positional (``f0``...)
with the real column names as aliases, since columns such as ``Volume Flow RateRMS`` or
``10_days_alert_label`` are not Python identifiers.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Mapping, NamedTuple, Sequence

import numpy as np
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, create_model
from pydantic_core import PydanticCustomError

# Epoch-millisecond timestamps outside this range are almost always a unit mistake
# (epoch seconds or microseconds), which would silently put events decades away.
MIN_TIMESTAMP_MS = int(datetime(1990, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
MAX_TIMESTAMP_MS = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
MAX_SENSOR_ID_LENGTH = 256
# Values are stored as float32 (vigil.buffer): a finite float64 beyond this would become inf there.
MAX_FEATURE_MAGNITUDE = 3.4028234663852886e38


def quantize(values: np.ndarray) -> np.ndarray:
    """Values as the buffer keeps them (float32), widened back to float64 for featurisation: files
    are rounded the same way, so an offline window is the very tensor the streamer scores."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


class SensorEvent(NamedTuple):
    """A validated event: what the buffer, featurisation and training consume."""

    sensor_id: str
    timestamp_ms: int
    values: tuple[float, ...]
    label: int | None


class EventError(ValueError):
    """An event that breaks the contract. ``reason`` is a stable code (DLQ header, metric label)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# What a sensor_id may be. It is opaque: stored, keyed and published exactly as sent (never
# trimmed or re-cased), so the rules only exclude what cannot be an id. The same patterns are
# published in the JSON Schema, and the decoder applies them as written there.
SENSOR_ID_VISIBLE = "\\S"  # at least one character that is not whitespace
SENSOR_ID_NO_SURROGATES = "^[^\\ud800-\\udfff]*$"  # a lone surrogate has no UTF-8 form (Kafka key, Redis key)
# ISO-8601 text Vigil reads as a timestamp: date, then T or a space, hours and minutes, optional
# seconds with up to 6 decimals, optional Z or +hh:mm offset (UTC without one), years 1990-2099.
# ``$(?!\n)``: Python's ``$`` would also match before a trailing newline, ECMA-262's does not.
ISO_TIMESTAMP = ("^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3])"
                 ":[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$(?!\\n)")
_VISIBLE, _NO_SURROGATES, _ISO = (re.compile(p) for p in (SENSOR_ID_VISIBLE, SENSOR_ID_NO_SURROGATES, ISO_TIMESTAMP))


def quoted(value: Any, limit: int = 80) -> str:
    """The input as the producer sent it, as JSON (control characters escaped), cut at ``limit``."""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode()  # a lone surrogate shows as \udxxx
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sensor_id(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "bad_sensor_id", "sensor_id must be a JSON string, got {kind} {v}",
            {"kind": type(value).__name__, "v": quoted(value)},
        )
    if not 1 <= len(value) <= MAX_SENSOR_ID_LENGTH:
        raise PydanticCustomError("bad_sensor_id", "sensor_id must be 1 to {n} characters, got {len}",
                                  {"n": MAX_SENSOR_ID_LENGTH, "len": len(value)})
    if not _VISIBLE.search(value):
        raise PydanticCustomError("bad_sensor_id", "sensor_id {v} has no visible character", {"v": quoted(value)})
    if not _NO_SURROGATES.search(value):
        raise PydanticCustomError("bad_sensor_id", "sensor_id {v} holds a lone surrogate (not valid UTF-8)",
                                  {"v": quoted(value)})
    return value


def iso_from_ms(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC text (what people read in inspect and tail output)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


def parse_timestamp_ms(value: Any) -> int:
    """ISO-8601 text (see ``ISO_TIMESTAMP``; UTC when no offset is given), epoch milliseconds as a
    number, or a datetime → epoch ms. Error messages quote the value as sent."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "bad_timestamp", "timestamp must be ISO-8601 text or epoch milliseconds, got a boolean"
        )
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
        return round(moment.timestamp() * 1000)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not MIN_TIMESTAMP_MS <= int(value) < MAX_TIMESTAMP_MS:
            raise PydanticCustomError(
                "bad_timestamp",
                "{v} is not epoch milliseconds between 1990 and 2100 (epoch seconds or microseconds?)",
                {"v": quoted(value)},
            )
        return int(value)
    if not isinstance(value, str):
        raise PydanticCustomError(
            "bad_timestamp", "timestamp must be ISO-8601 text or epoch milliseconds, got {kind}",
            {"kind": type(value).__name__},
        )
    if value.lstrip("-").isdigit():
        raise PydanticCustomError(
            "bad_timestamp", "{v} is a number in text: send epoch milliseconds as a JSON number",
            {"v": quoted(value)},
        )
    try:
        if not _ISO.search(value):
            raise ValueError
        moment = datetime.fromisoformat(value)  # also refuses dates no calendar has (February 30)
    except ValueError:
        raise PydanticCustomError(
            "bad_timestamp", "{v} is not ISO-8601 (YYYY-MM-DDThh:mm[:ss[.ffffff]][Z|±hh:mm]) "
            "in the years 1990 to 2099", {"v": quoted(value)},
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)


def _feature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("not_numeric", "must be a number, got {kind} {v}",
                                  {"kind": type(value).__name__, "v": quoted(value)})
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise PydanticCustomError("not_finite", "must be a finite number, got {v}", {"v": quoted(value)})
    if abs(number) > MAX_FEATURE_MAGNITUDE:
        raise PydanticCustomError("not_finite", "{v} is beyond float32 range (±3.4e38)", {"v": quoted(value)})
    return number


def _label(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None  # absent label: unlabelled event (pandas reads a missing cell as NaN)
    if not isinstance(value, bool) and isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    raise PydanticCustomError("bad_label", "label must be 0 or 1, got {v}", {"v": quoted(value)})


# Each field's JSON Schema states what its validator accepts (the published event schema), not
# the type it produces: a timestamp may be ISO-8601 text, a sensor_id an integer.
SensorIdField = Annotated[str, BeforeValidator(_sensor_id), WithJsonSchema({
    "type": "string", "minLength": 1, "maxLength": MAX_SENSOR_ID_LENGTH,
    "allOf": [{"pattern": SENSOR_ID_VISIBLE}, {"pattern": SENSOR_ID_NO_SURROGATES}],
    "description": f"the sensor's id, also the Kafka key: 1 to {MAX_SENSOR_ID_LENGTH} characters, at least one "
                   "not whitespace, no lone surrogate. Opaque: kept exactly as sent (never trimmed)",
})]
TimestampField = Annotated[int, BeforeValidator(parse_timestamp_ms), WithJsonSchema({
    "anyOf": [
        {"type": "string", "pattern": ISO_TIMESTAMP,
         "description": "ISO-8601, years 1990 to 2099, UTC when no offset is given; the date must exist "
                        "(February 30 is refused, which a pattern cannot say)"},
        {"type": "number", "minimum": MIN_TIMESTAMP_MS, "exclusiveMaximum": MAX_TIMESTAMP_MS,
         "description": "epoch milliseconds, 1990 to 2100 (a fraction is cut off)"},
    ],
    "description": "event time",
})]
FeatureField = Annotated[float, BeforeValidator(_feature), WithJsonSchema({
    "type": "number", "minimum": -MAX_FEATURE_MAGNITUDE, "maximum": MAX_FEATURE_MAGNITUDE,
    "description": "a finite number within float32 range",
})]
LabelField = Annotated[int | None, BeforeValidator(_label), WithJsonSchema({
    "anyOf": [{"enum": [0, 1]}, {"type": "null"}],
    "description": "optional: 1 anomalous, 0 normal; absent or null: unlabelled",
})]

# Stable reason codes (DLQ header ``vigil.reason``, metric label): what can be wrong with a message.
REASONS = frozenset({"empty", "oversized", "future_timestamp", "too_old", "not_json", "not_object", "missing_field", "bad_sensor_id",
                     "bad_timestamp", "not_numeric", "not_finite", "bad_label", "invalid"})

_REASON_BY_TYPE = {"missing": "missing_field", "json_invalid": "not_json", "model_type": "not_object"}


class EventSchema:
    """Validates raw events against the configured features and label column."""

    def __init__(self, features: Sequence[str], label_column: str = "10_days_alert_label"):
        if not features:
            raise ValueError("an event schema needs at least one feature")
        reserved = {"sensor_id", "timestamp", label_column}
        clash = sorted(reserved & set(features))
        if clash:
            raise ValueError(f"feature names {clash} clash with sensor_id/timestamp/label column")
        self.features = tuple(features)
        self.label_column = label_column
        fields: dict[str, Any] = {
            "sensor_id": (SensorIdField, ...),
            "timestamp": (TimestampField, ...),
            "label": (LabelField, Field(None, alias=label_column)),
        }
        for i, name in enumerate(self.features):
            fields[f"f{i}"] = (FeatureField, Field(..., alias=name))
        self.model = create_model(
            "SensorEventModel",
            __config__=ConfigDict(extra="ignore", populate_by_name=False, frozen=True),
            **fields,
        )

    def parse(self, data: Mapping[str, Any]) -> SensorEvent:
        """Validate one decoded event; raises :class:`EventError` with a precise reason."""
        try:
            item = self.model.model_validate(data)
        except ValidationError as exc:
            raise _event_error(exc) from None
        values = tuple(getattr(item, f"f{i}") for i in range(len(self.features)))
        return SensorEvent(item.sensor_id, item.timestamp, values, item.label)

    def parse_json(self, raw: bytes | str) -> SensorEvent:
        """Decode and validate a Kafka message value (JSON object)."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EventError("not_json", f"value is not JSON: {exc}") from None
        except RecursionError:
            raise EventError("not_json", "value nests too deeply to be an event") from None
        if not isinstance(data, dict):
            raise EventError("not_object", f"value is JSON {type(data).__name__}, not an object")
        return self.parse(data)

    def to_record(self, event: SensorEvent) -> dict[str, Any]:
        """The JSON-ready record of an event, with its real column names (for producing)."""
        record: dict[str, Any] = {"sensor_id": event.sensor_id, "timestamp": event.timestamp_ms}
        record.update(zip(self.features, event.values))
        if event.label is not None:
            record[self.label_column] = event.label
        return record

    def json_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema(by_alias=True)


def _event_error(exc: ValidationError) -> EventError:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in first["loc"]) or "event"
    reason = _REASON_BY_TYPE.get(first["type"], first["type"])
    if reason not in REASONS:
        reason = "invalid"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    message = "field is missing" if reason == "missing_field" else first["msg"]
    return EventError(reason, f"{field}: {message}{more}")
