"""Generated documentation: the configuration reference and the topics' JSON Schemas.

``docs/configuration.md`` is built from :class:`vigil.settings.VigilSettings` (field types,
constraints, defaults, descriptions), and ``docs/schemas/<topic>.schema.json`` from the pydantic
models in :mod:`vigil.events`. Nothing here reads the environment or a YAML file: the documents
show the code's defaults. ``tests/unit/test_docs.py`` fails when the committed files drift.

    python -m vigil.docs_gen            # rewrite docs/configuration.md and docs/schemas/
    python -m vigil.docs_gen --check    # exit 1, naming the stale files, when they differ
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from vigil.durations import Span, format_duration, format_span
from vigil.events.outputs import DLQ_HEADERS, DLQ_OPTIONAL_HEADERS, AlertRecord, ScoreRecord
from vigil.events.schema import REASONS, EventSchema
from vigil.settings import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, VigilSettings

ENV_PREFIX = VigilSettings.model_config["env_prefix"]
ENV_DELIMITER = VigilSettings.model_config["env_nested_delimiter"]
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "python -m vigil.docs_gen"

_GROUP_TITLES = {
    "kafka": "Kafka", "redis": "Redis", "topics": "Topics", "window": "Window", "stream": "Streamer",
    "services": "Local services", "": "General",
}


@dataclass(frozen=True)
class SettingRow:
    path: tuple[str, ...]   # ("stream", "max_wait")
    type: str
    default: str
    description: str  # the Field's description, in vigil/settings.py

    @property
    def yaml_path(self) -> str:
        return ".".join(self.path)

    @property
    def env(self) -> str:
        return ENV_PREFIX + ENV_DELIMITER.join(self.path).upper()


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def settings_rows() -> list[SettingRow]:
    """One row per leaf setting, in declaration order (top-level scalars last)."""
    nested, top = [], []
    for name, field in VigilSettings.model_fields.items():
        if _is_model(field.annotation):
            model = field.annotation
            props = model.model_json_schema()["properties"]
            nested += [_row((name, sub), f, props[sub]) for sub, f in model.model_fields.items()]
        else:
            top.append(_row((name,), field, VigilSettings.model_json_schema()["properties"][name]))
    return nested + top


def _row(path: tuple[str, ...], field: FieldInfo, schema: dict[str, Any]) -> SettingRow:
    return SettingRow(path, _type_text(schema), _default_text(field.get_default(call_default_factory=True)),
                      field.description or "")


def _type_text(schema: dict[str, Any]) -> str:
    variants = schema.get("anyOf")
    if variants:
        named = [v for v in variants if v.get("type") != "null"]
        text = " or ".join(_type_text(v) for v in named)
        return text + " or unset" if len(named) < len(variants) else text
    kind, fmt = schema.get("type"), schema.get("format")
    if "enum" in schema:
        base = " or ".join(f"`{v}`" for v in schema["enum"])
    elif fmt == "duration":
        base = "duration"
    elif fmt == "span":
        base = "span: a duration, `N bins` of the window or `N%` of it"
    elif fmt == "password":
        base = "secret text"
    elif fmt == "path":
        base = "path"
    elif kind == "array":
        base = "list of " + _type_text(schema.get("items", {})).replace("text", "names")
    elif kind == "object":
        base = "map of text to " + _type_text(schema.get("additionalProperties", {}))
    else:
        base = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean"}.get(kind, "any")
    limits = []
    for key, sign in (("minimum", "≥ "), ("exclusiveMinimum", "> "), ("maximum", "≤ "), ("minItems", "at least ")):
        if key in schema:
            limits.append(f"{sign}{schema[key]}")
    if "pattern" in schema:
        limits.append(f"pattern `{schema['pattern']}`")
    return base + (f" ({', '.join(limits)})" if limits else "")


def _default_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, Span):
        return f"`{format_span(value)}`"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()  # the default carries no password
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{','.join(map(str, value))}`"
    if isinstance(value, dict):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def configuration_markdown() -> str:
    rows = settings_rows()
    out = [
        "# Configuration reference",
        "",
        f"<!-- Generated from vigil/settings.py by `{REGENERATE}`; edit the settings, not this file. -->",
        "",
        "Every Vigil command reads the same typed settings (`vigil/settings.py`). Sources, highest first:",
        "",
        "1. command-line options, where a command has one (`vigil stream --group-id ...`);",
        f"2. environment variables: `{ENV_PREFIX}` and the setting's path in capitals, `{ENV_DELIMITER}` between",
        "   levels (`stream.max_wait` is `VIGIL_STREAM__MAX_WAIT`);",
        "3. a `.env` file in the working directory (the same names);",
        f"4. a YAML file: `--config FILE`, or `{CONFIG_FILE_ENV}=FILE`, or `{DEFAULT_CONFIG_FILE}` in the working",
        "   directory (nested keys: `stream: {max_wait: 100ms}`);",
        "5. the defaults below.",
        "",
        "`vigil config show` prints the effective configuration, secrets masked.",
        "",
        "Value syntax, in the environment and in YAML alike:",
        "",
        "- **duration**: a number with a unit, `ms`, `s`, `m`, `h`, `d` or `w`, combinable (`250ms`, `10d`,",
        "  `1h30m`), or a plain number of seconds;",
        "- **list of names**: comma-separated (`VIGIL_FEATURES=pressure,flow`) or a JSON list; a YAML list;",
        "- **map**: a JSON object in the environment (`VIGIL_KAFKA__CLIENT='{\"security.protocol\": \"SSL\"}'`),",
        "  a YAML mapping in the file; every value is taken as text;",
        "- **secret text**: never printed by `vigil config show` or the logs (see [security.md](security.md)).",
        "",
    ]
    groups: dict[str, list[SettingRow]] = {}
    for row in rows:
        groups.setdefault(row.path[0] if len(row.path) > 1 else "", []).append(row)
    for group, members in groups.items():
        out.append(f"## {_GROUP_TITLES.get(group, group)}" + (f" (`{group}`)" if group else ""))
        out.append("")
        if group:
            doc = (VigilSettings.model_fields[group].annotation.__doc__ or "").strip()
            if doc:
                out += [doc.splitlines()[0], ""]
        out += ["| Setting (YAML) | Environment variable | Type | Default | Description |",
                "|---|---|---|---|---|"]
        for row in members:
            out.append(f"| `{row.yaml_path}` | `{row.env}` | {_cell(row.type)} | {_cell(row.default)} "
                       f"| {_cell(row.description)} |")
        out.append("")
    return "\n".join(out)


def _default_features() -> tuple[list[str], str]:
    fields = VigilSettings.model_fields
    return fields["features"].get_default(call_default_factory=True), fields["label_column"].get_default()


def _docstring(model: type[BaseModel]) -> str:
    """A model's docstring as one line of Markdown (reST's double backquotes made single)."""
    return " ".join((model.__doc__ or "").split()).replace("``", "`")


def topic_schemas(features: list[str] | None = None, label: str | None = None,
                  max_event_bytes: int | None = None) -> dict[str, dict[str, Any]]:
    """JSON Schema of each topic's records, by topic role: events, scores, alerts, dlq.

    The events schema follows ``features`` and ``label`` (default: the settings' defaults, as in
    the committed docs; ``vigil schema events`` passes the configured ones).
    """
    topics = VigilSettings.model_fields["topics"].get_default(call_default_factory=True)
    default_features, default_label = _default_features()
    features, label = features or default_features, label or default_label
    events = EventSchema(features, label).json_schema()
    stream = VigilSettings.model_fields["stream"].get_default(call_default_factory=True)
    max_bytes = max_event_bytes or stream.max_event_bytes
    # JSON Schema has no keyword for a message's size: stated here, and checked by the agreement test.
    events["x-vigil-max-bytes"] = max_bytes
    scores = ScoreRecord.model_json_schema(mode="serialization")
    alerts = AlertRecord.model_json_schema(mode="serialization")
    headers = {**DLQ_HEADERS, **DLQ_OPTIONAL_HEADERS}
    dlq: dict[str, Any] = {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in headers.items()},
        "required": list(DLQ_HEADERS),
    }
    dlq["properties"]["vigil.reason"]["enum"] = sorted(REASONS)
    for name in ("vigil.source.partition", "vigil.source.offset", "vigil.truncated_from"):
        if name in dlq["properties"]:
            dlq["properties"][name]["pattern"] = "^-?[0-9]+$"
    described = {
        "events": (events, "Sensor event", (
            f"Value of a `{topics.events}` record (key: the sensor_id as UTF-8), a JSON object. Generated for "
            f"the features {', '.join(features)} and label column {label}; the feature columns "
            "follow the `features` setting (`vigil schema events` prints this schema for the configured "
            "ones). Unknown fields are ignored. An event that breaks this schema, or is larger than "
            f"`stream.max_event_bytes` ({max_bytes} bytes of UTF-8 JSON, also given as `x-vigil-max-bytes`), "
            "or further ahead than `stream.max_future`, or older than its sensor's window when it arrives, "
            "goes to the dead-letter topic. docs/gateways.md is the whole contract.")),
        "scores": (scores, "Score record", _docstring(ScoreRecord)),
        "alerts": (alerts, "Alert record", _docstring(AlertRecord)),
        "dlq": (dlq, "Dead letter", (
            f"A `{topics.dlq}` record: key and value are the original message's bytes, unchanged (the "
            "value cut to its first 64 KiB only when the topic refuses the whole); its headers are the "
            "original message's (trace ids...) followed by Vigil's. This schema describes the headers, "
            "read as an object of header name to UTF-8 text. `vigil dlq replay` re-publishes dead letters "
            "once their cause is fixed.")),
    }
    out = {}
    for role, (schema, title, description) in described.items():
        body = {k: v for k, v in schema.items() if k not in ("title", "description")}
        out[role] = {"$schema": JSON_SCHEMA_DIALECT, "title": title, "description": description, **body}
    return out


def render() -> dict[str, str]:
    """Every generated file's text, by path relative to the repository root."""
    files = {"docs/configuration.md": configuration_markdown()}
    for role, schema in topic_schemas().items():
        files[f"docs/schemas/{role}.schema.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return files


def stale(root: Path) -> list[str]:
    """Generated files that are missing or differ under ``root``."""
    return [rel for rel, text in render().items()
            if not (root / rel).is_file() or (root / rel).read_text(encoding="utf-8") != text]


def write(root: Path) -> list[str]:
    changed = stale(root)
    for rel, text in render().items():
        if rel in changed:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.docs_gen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="repository root (default: the checkout this module is in)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.root)
        for rel in outdated:
            print(f"stale: {rel} (regenerate with `{REGENERATE}`)", file=sys.stderr)
        return 1 if outdated else 0
    for rel in write(args.root):
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
