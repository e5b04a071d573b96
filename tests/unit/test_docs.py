"""Generated docs: the committed files equal a fresh generation, every documented environment
variable reaches its setting, and the topics' JSON Schemas accept real records (and refuse bad ones)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import jsonschema
import orjson
import pytest
from pydantic import SecretStr

from vigil import docs_gen
from vigil.durations import format_duration
from vigil.events.outputs import AlertRecord, ScoreRecord, alert_id
from vigil.events.schema import EventSchema, SensorEvent
from vigil.settings import VigilSettings

ROOT = Path(__file__).resolve().parents[2]
ROWS = {row.env: row for row in docs_gen.settings_rows()}


@pytest.mark.parametrize("rel", sorted(docs_gen.render()))
def test_committed_docs_equal_a_fresh_generation(rel):
    path = ROOT / rel
    assert path.is_file(), f"{rel} is missing: run `{docs_gen.REGENERATE}` and commit it"
    assert path.read_text(encoding="utf-8") == docs_gen.render()[rel], (
        f"{rel} is out of date with the code: run `{docs_gen.REGENERATE}` and commit the result")


def test_check_mode_reports_stale_files(tmp_path, capsys):
    assert docs_gen.main(["--root", str(tmp_path), "--check"]) == 1
    assert "stale: docs/configuration.md" in capsys.readouterr().err
    assert docs_gen.main(["--root", str(tmp_path)]) == 0
    assert docs_gen.main(["--root", str(tmp_path), "--check"]) == 0


def test_every_setting_is_documented_once():
    leaves = {(group, name) for group, field in VigilSettings.model_fields.items()
              if docs_gen._is_model(field.annotation) for name in field.annotation.model_fields}
    leaves |= {(name,) for name, field in VigilSettings.model_fields.items() if not docs_gen._is_model(field.annotation)}
    assert {row.path for row in ROWS.values()} == leaves
    undescribed = [row.yaml_path for row in ROWS.values() if not row.description]
    assert not undescribed, f"settings without a description (add Field(description=...)): {undescribed}"


def _documented_env_names() -> list[str]:
    text = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `[^`]+` \| `(VIGIL_[A-Z0-9_]+)` \|", text, flags=re.MULTILINE)


def _other_value(row: docs_gen.SettingRow, current):
    """(environment text, expected value) different from ``current``, valid for the setting."""
    field = _field(row.path)
    schema = _schema(row.path)
    pattern = next((v.get("pattern") for v in [schema, *schema.get("anyOf", [])] if v.get("pattern")), None)
    if isinstance(current, bool):
        return str(not current).lower(), not current
    if isinstance(current, int):
        return str(current + 1), current + 1
    if isinstance(current, float):
        value = current + 1.5 if (schema.get("maximum") or float("inf")) >= current + 1.5 else current / 2
        return str(value), value
    if isinstance(current, timedelta):
        value = current + timedelta(seconds=7)
        return format_duration(value), value
    if isinstance(current, SecretStr):
        return "redis://other-host:6380/2", "redis://other-host:6380/2"
    if isinstance(current, Path) or (current is None and "path" in row.type):
        return "/srv/elsewhere", Path("/srv/elsewhere")
    if isinstance(current, list):
        return "pressure,flow", ["pressure", "flow"]
    if isinstance(current, dict):
        return json.dumps({"security.protocol": "SSL"}), {"security.protocol": "SSL"}
    if "enum" in schema:
        value = next(v for v in schema["enum"] if v != current)
        return value, value
    for candidate in ("json", "other-value", "pod-0"):
        if candidate != current and (pattern is None or re.fullmatch(pattern, candidate)):
            return candidate, candidate
    raise AssertionError(f"no test value for {row.yaml_path} ({field})")


def _field(path):
    field = VigilSettings.model_fields[path[0]]
    return field.annotation.model_fields[path[1]] if len(path) > 1 else field


def _schema(path):
    if len(path) == 1:
        return VigilSettings.model_json_schema()["properties"][path[0]]
    return VigilSettings.model_fields[path[0]].annotation.model_json_schema()["properties"][path[1]]


def _get(settings, path):
    value = settings
    for part in path:
        value = getattr(value, part)
    return value


def test_the_reference_lists_every_environment_variable():
    assert sorted(_documented_env_names()) == sorted(ROWS)


@pytest.mark.parametrize("env", sorted(ROWS))
def test_each_documented_environment_variable_sets_its_field(clean_env, env):
    row = ROWS[env]
    default = _get(VigilSettings(), row.path)
    text, expected = _other_value(row, default)
    clean_env.setenv(env, text)
    value = _get(VigilSettings(), row.path)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    assert value == expected != default, f"{env}={text!r} did not set {row.yaml_path}"


# -- topic schemas -------------------------------------------------------------------------------

SCHEMAS = {role: json.loads((ROOT / f"docs/schemas/{role}.schema.json").read_text()) for role in
           ("events", "scores", "alerts", "dlq")}


def _valid(role: str, instance) -> bool:
    validator = jsonschema.Draft202012Validator(SCHEMAS[role])
    return not list(validator.iter_errors(instance))


@pytest.mark.parametrize("role", sorted(SCHEMAS))
def test_schemas_are_valid_json_schema(role):
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[role])


def test_events_schema_accepts_what_the_event_contract_accepts():
    schema = EventSchema(["feature_1", "feature_2"])
    produced = schema.to_record(SensorEvent("sensor-7", 1767225600000, (0.5, -3.25), 1))
    seed_row = {"sensor_id": "42", "timestamp": "2026-01-01 00:03:00", "feature_1": 1, "feature_2": 2.5,
                "10_days_alert_label": 0, "firmware": "1.2"}  # unknown fields are ignored
    for raw in (produced, seed_row, {**seed_row, "timestamp": "2026-01-01T00:03:00+02:00", "sensor_id": 17}):
        schema.parse(raw)  # the contract accepts it ...
        assert _valid("events", json.loads(json.dumps(raw))), raw  # ... and so does the published schema


@pytest.mark.parametrize("bad", [
    {"timestamp": 1767225600000, "feature_1": 1.0, "feature_2": 2.0},                   # no sensor_id
    {"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 1.0},                   # missing feature
    {"sensor_id": "s", "timestamp": 1767225600000, "feature_1": "1", "feature_2": 2.0},  # not numeric
    {"sensor_id": "s", "timestamp": 1767225600, "feature_1": 1.0, "feature_2": 2.0},     # epoch seconds
    {"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 1.0, "feature_2": 2.0, "10_days_alert_label": 2},
    {"sensor_id": "", "timestamp": 1767225600000, "feature_1": 1.0, "feature_2": 2.0},
])
def test_events_schema_refuses_what_the_decoder_dead_letters(bad):
    with pytest.raises(ValueError):
        EventSchema(["feature_1", "feature_2"]).parse(bad)
    assert not _valid("events", bad)


def test_scores_schema_accepts_a_published_score_record():
    record = ScoreRecord(sensor_id="sensor-7", window_start=1766361600000, window_end=1767225600000, n_events=14400,
                         score=0.731, threshold=0.5, alert=True, model_version="20261127T101500Z-3f2a1c",
                         scored_at=1767225600250)
    value = json.loads(orjson.dumps(record.model_dump()))  # the bytes the streamer produces
    assert _valid("scores", value)
    assert not _valid("scores", {k: v for k, v in value.items() if k != "model_version"})


def test_alerts_schema_accepts_opened_and_cleared_alerts():
    opened_id = alert_id("sensor-7", 1767225600000, 14400, "v1", "alert")
    opened = AlertRecord(alert_id=opened_id, kind="alert", sensor_id="sensor-7", window_start=1766361600000,
                         window_end=1767225600000, n_events=14400, score=0.9, threshold=0.5, model_version="v1",
                         scored_at=1767225600250)
    cleared = opened.model_copy(update={"alert_id": alert_id("sensor-7", 1767229200000, 14460, "v1", "cleared"),
                                        "kind": "cleared", "clears": opened_id, "score": 0.2})
    for record in (opened, cleared):
        assert _valid("alerts", json.loads(orjson.dumps(record.model_dump())))
    assert not _valid("alerts", {**json.loads(orjson.dumps(opened.model_dump())), "kind": "maybe"})


def test_dlq_schema_accepts_a_real_dead_letters_headers():
    from streamer.ingest import split_messages
    from vigil.events.decode import EventDecoder

    class Message:  # the three accessors split_messages and DeadLetter use, and the value
        def __init__(self, value: bytes):
            self._value = value

        def error(self):
            return None

        def value(self):
            return self._value

        def topic(self):
            return "sensor-events"

        def partition(self):
            return 4

        def offset(self):
            return 1234

    got = split_messages([Message(b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": NaN}')],
                         EventDecoder(EventSchema(["feature_1", "feature_2"])), 2**62)
    (dead,) = got.dead
    headers = {name: value.decode() for name, value in dead.headers()}
    assert _valid("dlq", headers), headers
    assert not _valid("dlq", {**headers, "vigil.reason": "no_such_reason"})
    assert not _valid("dlq", {k: v for k, v in headers.items() if k != "vigil.source.offset"})
