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
from vigil.durations import Span, format_span, format_duration
from vigil.events.outputs import AlertRecord, ScoreRecord, alert_id
from vigil.events.schema import EventSchema
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
    if isinstance(current, Span):
        value = Span("bins", current.amount + 7 if current.kind == "bins" else 7)
        return format_span(value), value
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


_GOOD = {"sensor_id": "sensor-7", "timestamp": 1767225600000, "feature_1": 0.5, "feature_2": -3.25}
# Each case changes the good event; the published schema and the streamer's decoder must agree on it.
CONTRACT_CASES = [
    {},
    {"10_days_alert_label": 1, "firmware": "1.2"},  # unknown fields are ignored
    {"sensor_id": "42", "timestamp": "2026-01-01 00:03:00"},
    {"timestamp": "2026-01-01T00:03:00+02:00"},
    {"timestamp": "2026-01-01T00:03:00.123456Z"},
    {"timestamp": "2026-01-01T00:03"},
    {"timestamp": "2026-01-01T00:03:00.1234567Z"},  # 7 decimals
    {"timestamp": "2026-01-01"},  # no time
    {"timestamp": "9999-12-31T23:59:59Z"},
    {"timestamp": "1970-01-01T00:00:00Z"},
    {"timestamp": "1989-12-31T23:59:59Z"},
    {"timestamp": "2099-12-31T23:59:59Z"},
    {"timestamp": "2100-01-01T00:00:00Z"},
    {"timestamp": "2026-13-01T00:00:00Z"},
    {"timestamp": "2026-01-01T24:00:00Z"},
    {"timestamp": "2026-01-01T00:00:00Z\n"},
    {"timestamp": "1767225600"},  # epoch seconds as text
    {"timestamp": "1767225600000"},  # epoch ms as text: the decoder asks for a number
    {"timestamp": 1767225600},
    {"timestamp": 631152000000},
    {"timestamp": 631151999999},
    {"timestamp": 4102444799999},
    {"timestamp": 4102444800000},
    {"timestamp": 1767225600000.75},
    {"timestamp": None},
    {"timestamp": True},
    {"sensor_id": "   "},
    {"sensor_id": ""},
    {"sensor_id": " pad "},
    {"sensor_id": "line\nbreak"},
    {"sensor_id": "nul\u0000"},
    {"sensor_id": "x" * 256},
    {"sensor_id": "x" * 257},
    {"sensor_id": "a\ud800"},
    {"sensor_id": 17},
    {"sensor_id": 17.0},
    {"sensor_id": None},
    {"feature_1": "1"},
    {"feature_1": True},
    {"feature_1": 3.4e38},
    {"feature_1": 3.5e38},
    {"feature_1": None},
    {"10_days_alert_label": 2},
    {"10_days_alert_label": None},
    {"10_days_alert_label": 1.0},
    {"10_days_alert_label": "1"},
    {"pad": "x" * 20_000},  # over the size limit
    {"pad": "x" * 16_200},  # just under
]


@pytest.mark.parametrize("change", CONTRACT_CASES, ids=lambda c: json.dumps(c)[:60])
def test_events_schema_and_decoder_agree(change):
    """The published events schema states exactly what the streamer's decoder accepts: the same
    cases go to both (the size limit is the schema's x-vigil-max-bytes)."""
    from vigil.events.decode import EventDecoder
    from vigil.events.schema import EventError

    schema = SCHEMAS["events"]
    event = {**_GOOD, **change}
    raw = json.dumps(event).encode()
    decoder = EventDecoder(EventSchema(["feature_1", "feature_2"]), max_bytes=schema["x-vigil-max-bytes"])
    try:
        decoder.decode(raw)
        accepted = True
    except EventError:
        accepted = False
    published = _valid("events", json.loads(raw)) and len(raw) <= schema["x-vigil-max-bytes"]
    assert accepted == published, f"decoder {'accepts' if accepted else 'refuses'} what the schema does not"


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

    from confluent_kafka import Message

    original = Message(topic="sensor-events", partition=4, offset=1234, key=b"s",
                       value=b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": NaN}',
                       headers=[("traceparent", b"00-4bf92f35-01")], timestamp=(1, 1767225600000))
    got = split_messages([original],
                         EventDecoder(EventSchema(["feature_1", "feature_2"])), 2**62)
    (dead,) = got.dead
    headers = {name: value.decode() for name, value in dead.headers()}
    assert headers["traceparent"] == "00-4bf92f35-01"  # the producer's own headers are kept
    assert _valid("dlq", headers), headers
    assert not _valid("dlq", {**headers, "vigil.reason": "no_such_reason"})
    assert not _valid("dlq", {k: v for k, v in headers.items() if k != "vigil.source.offset"})


# -- docs/architecture.md cites only what exists --------------------------------------------------

_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_CAMEL = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+")
_CODE_DIRS = ("vigil", "streamer", "trainer", "bench", "deploy")
_REPO_PATH = re.compile(r"(?:vigil|streamer|trainer|tests|bench|docs|deploy)/[\w./]*(?:::\w+)?")


def _code_names() -> set[str]:
    """Every name the code defines or uses: functions, classes, attributes, arguments, keywords,
    and identifier-like strings (meta fields and record keys are strings in the code)."""
    import ast

    names: set[str] = set()
    for package in _CODE_DIRS:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute):
                    names.add(node.attr)
                elif isinstance(node, ast.arg):
                    names.add(node.arg)
                elif isinstance(node, ast.keyword) and node.arg:
                    names.add(node.arg)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
                    names.add(node.value)
    return names


def cited_names(markdown: str) -> set[str]:
    """The Python-looking names a page cites in backticks: the leading dotted name of each span
    (``RollingBuffer.read_batch``, ``retry(...)``), its parts that are snake_case with an
    underscore or CamelCase. Commands, Redis key patterns and metric names (``vigil_…``) are not."""
    out = set()
    for span in re.findall(r"`([^`\n]+)`", markdown):
        head = re.match(r"[A-Za-z_][\w.]*", span)
        if head is None or span.startswith(("vigil_", "VIGIL_")) or "/" in span or ":" in span:
            continue
        out |= {part for part in head.group(0).split(".") if _SNAKE.fullmatch(part) or _CAMEL.fullmatch(part)}
    return out


def cited_paths(markdown: str) -> set[str]:
    return {span for span in re.findall(r"`([^`\n]+)`", markdown) if _REPO_PATH.fullmatch(span)}


def test_cited_names_are_the_python_looking_ones():
    page = ("`RollingBuffer.read_batch` and `retry(action, \"redis\")`, `vigil train`, `min_events`, "
            "`vigil_scores_total`, `{prefix}:s:{id}:meta`, `HINCRBY`, `ready`, `streamer/app.py`")
    assert cited_names(page) == {"RollingBuffer", "read_batch", "min_events"}
    assert cited_paths(page) == {"streamer/app.py"}


def test_architecture_cites_only_code_names_and_paths_that_exist():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = cited_names(page)
    assert len(names) > 30  # the page does cite the code
    missing = sorted(names - _code_names())
    assert not missing, f"docs/architecture.md cites names the code does not have: {missing}"
    gone = []
    for cited in sorted(cited_paths(page)):
        path, _, test = cited.partition("::")
        if not (ROOT / path).exists() or (test and f"def {test}(" not in (ROOT / path).read_text(encoding="utf-8")):
            gone.append(cited)
    assert not gone, f"docs/architecture.md cites paths that do not exist: {gone}"
