"""Typed configuration for every Vigil component (pydantic-settings).

Precedence, highest first: explicit arguments, environment (``VIGIL_`` prefix, ``__`` between
nested names, e.g. ``VIGIL_KAFKA__BOOTSTRAP_SERVERS``), a ``.env`` file, a YAML file
(``VIGIL_CONFIG=path.yaml``, or ``vigil.yaml`` in the working directory), then the defaults here.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import (BaseModel, BeforeValidator, Field, PlainSerializer, SecretStr, WithJsonSchema, field_validator,
                      model_validator)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from vigil.durations import Span, format_duration, format_span, parse_duration, parse_span

CONFIG_FILE_ENV = "VIGIL_CONFIG"
DEFAULT_CONFIG_FILE = "vigil.yaml"

# Durations accept "10d"/"6h"/"10s" in env, YAML and code, and print back the same way.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]

# Spans of event time that follow the window: "6 bins", "10%", or a duration ("6h").
WindowSpan = Annotated[
    Span,
    BeforeValidator(parse_span),
    PlainSerializer(format_span, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "span"}),
    NoDecode,  # text, not JSON, in environment variables
]

# Settings folded into stream.score_every, with what to set instead.
REMOVED_STREAM_SETTINGS = {
    "score_every_events": "scoring follows event time now; set stream.score_every (a span of event time, e.g. "
                          "'1 bin' or '15m'; 0 scores every new event)",
    "score_min_interval": "scoring follows event time now; set stream.score_every to the interval (e.g. '5m')",
}

# librdkafka option names whose values must never be printed.
_SECRET_MARKERS = ("password", "secret", "token", "key.pem", "private", "jaas")


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()  # librdkafka spells booleans true/false
    return str(value) if isinstance(value, (int, float)) else value


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka brokers, comma-separated host:port")
    # Values are taken as text: a password that YAML reads as a number stays the password.
    client: dict[str, Annotated[str, BeforeValidator(_as_text)]] = Field(
        default_factory=dict,
        description="librdkafka options passed verbatim to every Kafka client (security.protocol, sasl.*, "
                    "ssl.*...); values are taken as text; see docs/security.md",
    )

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """The librdkafka configuration for one client: bootstrap + pass-through + overrides."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.client, **overrides}

    def masked_client(self) -> dict[str, str]:
        return {
            k: ("***" if any(m in k.lower() for m in _SECRET_MARKERS) else v) for k, v in self.client.items()
        }


class RedisSettings(BaseModel):
    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL (redis://, rediss://; user and password in the URL or ?password=)",
    )
    key_prefix: str = Field(
        "vigil", pattern=r"^[A-Za-z0-9_.:-]+$",
        description="every key Vigil writes starts with this, so several deployments can share one Redis",
    )
    resent_tail: int = Field(
        16, ge=0, le=4096,
        description="a sensor's latest events kept as they arrived (besides its bins): an event equal to one of "
                    "them (time and values) is a gateway's resend and is not counted twice; 0 turns the check off",
    )
    # Keys expire this long after the window (wall clock) once a sensor goes silent. The slack
    # covers a stream that falls behind: event time, which trims, then lags the wall clock.
    ttl_grace: Duration = Field(
        timedelta(days=10),
        description="keys expire this long after the window (wall clock) once a sensor goes silent: the slack "
                    "for a stream that falls behind the wall clock",
    )
    cluster: bool = Field(False, description="Redis Cluster: `url` names any one node, the others are "
                                             "discovered; a sensor's keys share a slot")

    def masked_url(self) -> str:
        parts = urlsplit(self.url.get_secret_value())
        if parts.password is not None:
            user, host = parts.username or "", parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            parts = parts._replace(netloc=f"{user}:***@{host}{port}")
        if parts.query:  # redis-py also takes ?password=...
            query = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)]
            parts = parts._replace(query=urlencode(query, safe="*"))
        return parts.geturl()


class TopicSettings(BaseModel):
    events: str = Field(
        "sensor-events",
        description="topic the gateways publish sensor events to (key: sensor_id)",
    )
    scores: str = Field("sensor-scores", description="topic of score records")
    alerts: str = Field("sensor-alerts", description="topic of alert and cleared records")
    dlq: str = Field("sensor-events.dlq", description="dead-letter topic for invalid events")
    events_partitions: int = Field(
        6, ge=1,
        description="partitions `vigil services up|topics` creates for the events topic: the most streamer "
                    "replicas that can share the work",
    )
    scores_partitions: int = Field(6, ge=1, description="partitions created for the scores topic")
    alerts_partitions: int = Field(3, ge=1, description="partitions created for the alerts topic")
    dlq_partitions: int = Field(1, ge=1, description="partitions created for the dead-letter topic")
    replication_factor: int = Field(1, ge=1, description="replication factor of the topics Vigil creates")

    def partitions(self) -> dict[str, int]:
        """Every topic Vigil uses, with its partition count."""
        return {
            self.events: self.events_partitions,
            self.scores: self.scores_partitions,
            self.alerts: self.alerts_partitions,
            self.dlq: self.dlq_partitions,
        }


class WindowSettings(BaseModel):
    length: Duration = Field(
        timedelta(days=10),
        description="how much of each sensor's history a window holds and the buffer keeps",
    )
    steps: int = Field(240, ge=1, description="time bins a window is resampled into (the model's sequence length); "
                                              "the buffer keeps each sensor's window as this many bins of length/steps (whole ms)")
    min_events: int = Field(10, ge=1, description="fewest events in a window for it to be scored")

    @field_validator("length")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("window length must be positive, e.g. 10d")
        return value


class StreamSettings(BaseModel):
    """How `vigil stream` batches, scores and alerts (docs/architecture.md, stages 1-6)."""

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, data: Any) -> Any:
        # A setting that no longer does anything must not be dropped in silence: the operator
        # who set it expects its effect.
        if isinstance(data, dict):
            for name in REMOVED_STREAM_SETTINGS:
                if data.get(name) is not None:
                    raise ValueError(f"stream.{name} was removed: {REMOVED_STREAM_SETTINGS[name]}")
        return data

    group_id: str = Field("vigil-streamer", description="Kafka consumer group of the streamer replicas")
    # Messages are decoded as they come and released (a Kafka message holds its whole fetch
    # buffer); the decoded events of several calls are applied together, so a sensor's events
    # share one buffer write however few each call holds (docs/operations.md, bench/README.md).
    poll_events: int = Field(5000, ge=1, description="most messages taken from Kafka per consume call")
    apply_events: int = Field(100_000, ge=1, description="while the consumer is behind, decoded events wait to be "
                                                         "applied to the buffers together, so each sensor's share one "
                                                         "buffer write: until 16 per sensor or this many have "
                                                         "gathered, this many / 16 sensors wait, or "
                                                         "stream.apply_wait has passed")
    apply_wait: Duration = Field(timedelta(seconds=1), description="longest a decoded event waits to be applied "
                                                                   "while the consumer is behind")
    # Off: on 2 cores shared with the broker and Redis it cost CPU and p99 (bench/README.md).
    read_ahead: bool = Field(False, description="while the consumer is behind, read and decode the next consume "
                                                "calls in a second thread while events are applied to Redis (for "
                                                "a host with idle cores; measured slower on a busy 2-core one)")
    max_batch_windows: int = Field(512, ge=1, description="most windows scored in one model call")
    overlap: bool = Field(True, description="run each batch's model call in a second thread while the next "
                                            "batch is read and featurised and events are applied; batches "
                                            "still leave in order, all before the cycle's commit")
    overlap_min_windows: int = Field(1, ge=1, description="with overlap, a batch of fewer windows has its model "
                                                          "call in the loop's thread. 1 (every batch to the second "
                                                          "thread): on 2 cores it lowered the default cadence's p99 "
                                                          "at 500 sensors and did not raise it at 5,000 "
                                                          "(bench/README.md); a saturated host may measure 512 "
                                                          "(full batches only) better")
    max_wait: Duration = Field(
        timedelta(milliseconds=250),
        description="longest a ready window waits for its batch",
    )
    score_every: WindowSpan = Field(
        Span("bins", 1),
        description="a sensor's window is scored once per this span of event time, at the span's last event, when "
                    "a later event completes it (spans shifted per sensor, so a fleet's scores spread out); a "
                    "backlog is scored at the same points as live traffic; 0: at every new event, coalesced per "
                    "batch (the points then depend on arrival)",
    )
    scoring: bool = Field(
        True,
        description="off: ingest only (buffers fill, nothing is scored); `vigil stream --no-score`",
    )
    max_event_bytes: int = Field(16_384, ge=64, description="larger messages go to the DLQ as oversized")
    max_future: Duration = Field(
        timedelta(days=1),
        description="events further ahead of the wall clock go to the DLQ",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="address the /metrics, /healthz and /readyz server listens on",
    )
    metrics_port: int = Field(9108, ge=0, le=65535, description="Prometheus /metrics, /healthz, /readyz (0: off)")
    model_poll: Duration = Field(timedelta(seconds=5), description="how often the model pointer is checked")
    retry_max_backoff: Duration = Field(
        timedelta(seconds=30),
        description="cap of the wait between retries in an outage",
    )
    delivery: Literal["at-least-once", "exactly-once"] = Field(
        "at-least-once",
        description="exactly-once: scores, alerts and dead letters are produced in a Kafka transaction "
                    "with the consumed offsets; read them with isolation.level=read_committed",
    )
    instance_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$",
        description="a replica's stable name (e.g. a StatefulSet pod's): static group membership, so a "
                    "restarted replica takes its partitions back at once, and the transactional id that "
                    "fences its previous incarnation",
    )

    def transactional_id(self) -> str:
        """Stable per replica where ``instance_id`` is set; otherwise unique to this process."""
        return f"{self.group_id}-{self.instance_id or f'{socket.gethostname()}-{os.getpid()}'}"


class AlertSettings(BaseModel):
    """When a scored window raises or clears an alert (``vigil.alerts.AlertPolicy``), and the
    false-alert budget ``vigil train`` sets the threshold for. Spans are in event time and follow
    the window by default: a number of its bins (``6 bins``), a share of it (``10%``), or a fixed
    duration (``6h``)."""

    warmup_fraction: float = Field(
        0.2, ge=0, le=1,
        description="a sensor may alert once its buffered history covers this share of the window (the heads' "
                    "reference: 2 days of a 10-day window); its earlier scores are published with warming_up=true",
    )
    for_points: int = Field(
        2, ge=1,
        description="an alert fires only after this many consecutive scores at or above the threshold",
    )
    for_duration: WindowSpan = Field(
        Span("bins", 1),
        description="and only once they have stayed there this long (like Prometheus' for:)",
    )
    clear_ratio: float = Field(
        0.8, gt=0, le=1,
        description="an open alert clears below this fraction of the threshold (hysteresis) ...",
    )
    clear_for: WindowSpan = Field(
        Span("bins", 6),
        description="... once the score has stayed below it this long",
    )
    cooldown: WindowSpan = Field(
        Span("fraction", 0.1),
        description="before a still-anomalous sensor with an open alert is alerted again",
    )
    budget: float = Field(
        0.1, gt=0,
        description="false alerts per 100 normal sensor-days `vigil train` sets the threshold for",
    )
    silent_bins: int = Field(
        6, ge=0,
        description="a sensor is alerted silent (reason silent) once its partition's event time has moved this many "
                    "bins (window.length / window.steps) past the sensor's newest event; its next event clears "
                    "the alert; 0: off",
    )

    def span_ms(self, name: str, window_ms: int, bin_ms: int) -> int:
        """``for_duration``, ``clear_for`` or ``cooldown`` in ms for this window and grid."""
        # (parse_span: a copy made with model_copy(update=...) may hold an unvalidated duration)
        return parse_span(getattr(self, name)).ms(window_ms, bin_ms)


class LocalServicesSettings(BaseModel):
    """How `vigil services up` runs Kafka and Redis on this machine (ports come from the URLs)."""

    kafka_controller_port: int = Field(9093, description="local KRaft controller port (`vigil services up`)")
    kafka_heap: str = Field("512m", description="local Kafka broker's JVM heap (-Xmx)")
    kafka_ready_timeout_s: float = Field(
        120.0, gt=0,
        description="seconds `vigil services up` waits for Kafka to answer",
    )
    redis_ready_timeout_s: float = Field(
        30.0, gt=0,
        description="seconds `vigil services up` waits for Redis to answer PING",
    )


class VigilSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    window: WindowSettings = Field(default_factory=WindowSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    services: LocalServicesSettings = Field(default_factory=LocalServicesSettings)
    features: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["feature_1", "feature_2"], min_length=1,
        description="the events' numeric feature columns, in model order",
    )
    label_column: str = Field("10_days_alert_label", description="name of the optional 0/1 label column in events")
    data_dir: Path = Field(
        Path("var"),
        description="local data: services' files, the default model registry (`<data_dir>/models`)",
    )
    model_dir: Path | None = Field(None, description="model registry directory (unset: `<data_dir>/models`)")
    log_format: str = Field(
        "auto", pattern="^(auto|json|console)$",
        description="auto (JSON when the output is not a terminal), json or console",
    )
    log_level: str = Field("info", description="debug, info, warning or error")

    @field_validator("features", mode="before")
    @classmethod
    def _split_features(cls, value: Any) -> Any:
        # "a,b" from an environment variable or CLI flag, as well as a YAML/JSON list.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [f.strip() for f in value.split(",") if f.strip()]
        return value

    @property
    def models_path(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _yaml_source(settings_cls), file_secret_settings)

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain JSON data, secrets replaced by ``***``."""
        data = self.model_dump(mode="json")
        data["kafka"]["client"] = self.kafka.masked_client()
        data["redis"]["url"] = self.redis.masked_url()
        data["model_dir"] = str(self.models_path)
        return data


def _yaml_source(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource:
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit and not Path(explicit).is_file():
        raise FileNotFoundError(f"{CONFIG_FILE_ENV}={explicit}: no such configuration file")
    return YamlConfigSettingsSource(settings_cls, yaml_file=explicit or DEFAULT_CONFIG_FILE)
