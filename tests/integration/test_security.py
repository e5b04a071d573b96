"""Security settings: Kafka SASL/SCRAM, a Redis ACL user confined to Vigil's key prefix, no secret in logs.

The module runs its own Kafka broker (a PLAINTEXT listener for administration plus a SASL_PLAINTEXT
listener that only accepts SCRAM-SHA-256 users) and its own redis-server loaded with the ACL file
that docs/security.md documents (deploy/redis/users.acl: the default user off, a `vigil` user
limited to the `vigil:` keys and channels). Both are started once for the module on their own ports
and stopped by pid afterwards; the suite's shared Kafka and Redis serve the other half of each test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from streamer.app import Streamer
from streamer.journal import AlertJournal, PendingAlert
from trainer.sample import sample_buffers
from vigil.buffer import BufferLayout, RollingBuffer
from vigil.kafka.clients import make_producer
from vigil.kafka.produce import produce_frame
from vigil.registry import announcement_channel
from vigil.services.kafka import LocalKafka, ScramListener
from vigil.services.paths import REPO_ROOT
from vigil.services.process import port_open
from vigil.services.redis import LocalRedis
from vigil.simulate import FleetSpec, generate_fleet

from tests.conftest import own_services
from tests.integration.streaming import counter, isolated_settings, running, stream_all, topics_of, wait_for

# Below Linux's ephemeral range (32768-60999), where a client socket's local port could take them.
KAFKA_PORT, CONTROLLER_PORT, SASL_PORT, REDIS_PORT = 31092, 31093, 31094, 31379
ACL_FILE = REPO_ROOT / "deploy" / "redis" / "users.acl"
ACL_PREFIX = "vigil"  # the key prefix (and channel prefix) the shipped ACL file allows
USER = "vigil"


def _free_ports(*ports: int) -> None:
    for port in ports:
        if port_open("127.0.0.1", port):
            pytest.skip(f"port {port} is busy on this machine")


@pytest.fixture(scope="module")
def scram_kafka(settings, tmp_path_factory):
    """A private broker whose SASL listener knows one SCRAM user, ``vigil``, with a random password."""
    own_services()
    _free_ports(KAFKA_PORT, CONTROLLER_PORT, SASL_PORT)
    root = tmp_path_factory.mktemp("secure-kafka") / "kafka"
    root.mkdir()
    shared_libs = settings.data_dir / "kafka" / "libs"
    if shared_libs.is_dir():  # the suite's jars (stamped with the pom's hash): no Maven run here
        (root / "libs").symlink_to(shared_libs.resolve(), target_is_directory=True)
    kafka = LocalKafka(root, "127.0.0.1", KAFKA_PORT, CONTROLLER_PORT, "512m",
                       ScramListener(SASL_PORT, {USER: f"kafka-pw-{secrets.token_urlsafe(12)}"}))
    try:
        kafka.start(settings.services.kafka_ready_timeout_s)
        yield kafka
    finally:
        kafka.process.stop()


@dataclass
class AclRedis:
    server: LocalRedis
    password: str  # the `vigil` user's
    admin: redis.Redis  # a test-only administrator, to read the server's ACL LOG of denied commands


@pytest.fixture(scope="module")
def acl_redis(settings, tmp_path_factory):
    """A private redis-server loading deploy/redis/users.acl, the ``vigil`` user given a password."""
    own_services()
    _free_ports(REDIS_PORT)
    root = tmp_path_factory.mktemp("secure-redis")
    password, admin_password = (f"redis-pw-{secrets.token_urlsafe(12)}" for _ in range(2))
    acl = root / "users.acl"
    acl.write_text(with_password(ACL_FILE.read_text(), USER, password)
                   + f"user admin on >{admin_password} ~* &* +@all\n")
    server = LocalRedis(root, "127.0.0.1", REDIS_PORT, acl_file=acl)
    try:
        server.start(settings.services.redis_ready_timeout_s)
        admin = redis.Redis.from_url(redis_url(server, admin_password, user="admin"), decode_responses=True)
        yield AclRedis(server, password, admin)
        admin.close()
    finally:
        server.process.stop()


def with_password(acl_text: str, user: str, password: str) -> str:
    """The shipped ACL file with ``>password`` appended to ``user``'s line (as docs/security.md says)."""
    lines = acl_text.splitlines()
    matching = [i for i, line in enumerate(lines) if line.split()[:2] == ["user", user]]
    assert len(matching) == 1, f"{ACL_FILE} must define user {user} once"
    lines[matching[0]] += f" >{password}"
    return "\n".join(lines) + "\n"


def redis_url(server: LocalRedis, password: str | None, user: str = USER) -> str:
    auth = f"{user}:{password}@" if password is not None else ""
    return f"redis://{auth}{server.host}:{server.port}/0"


def sasl_settings(settings, kafka: LocalKafka, password: str | None = None, **stream):
    """Isolated settings whose Kafka clients all go through the SASL listener as ``vigil``."""
    cfg = isolated_settings(settings, **stream)
    client = kafka.sasl_client_config(USER, password)
    return cfg.model_copy(update={
        "kafka": cfg.kafka.model_copy(update={"bootstrap_servers": kafka.sasl_address, "client": client}),
    })


def acl_settings(settings, server: LocalRedis, password: str, **stream):
    """Isolated settings (shared Kafka) whose Redis is the ACL server, as ``vigil``, under ``vigil:``."""
    cfg = isolated_settings(settings, **stream)
    return cfg.model_copy(update={
        "redis": cfg.redis.model_copy(update={"url": SecretStr(redis_url(server, password)), "key_prefix": ACL_PREFIX}),
    })


def buffered(client: redis.Redis, cfg, sensor_ids) -> int:
    buffer = RollingBuffer(client, BufferLayout.from_settings(cfg), cfg.topics.events)
    states = [s for s in buffer.state_many(list(sensor_ids)) if s is not None]
    return sum(w.n_events for w in buffer.read_many(states))


# -- Kafka: SASL/SCRAM -------------------------------------------------------------------------

def test_streamer_with_scram_credentials_streams_every_event(settings, scram_kafka, redis_client):
    cfg = sasl_settings(settings, scram_kafka, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=15, days=1, seed=1201))
    # Topics are created, events produced and consumed, offsets committed: all through SASL.
    with topics_of(cfg):
        streamer = stream_all(cfg, fleet.events)
    assert counter(streamer, "vigil_buffer_writes_total", result="added") == len(fleet.events)
    assert buffered(redis_client, cfg, fleet.events.sensor_id.unique()) == len(fleet.events)


def test_kafka_refuses_a_wrong_password_and_a_client_without_credentials(settings, scram_kafka):
    good = sasl_settings(settings, scram_kafka, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=5, days=1, seed=1202))
    with topics_of(good):
        produce_frame(make_producer(good), good.topics.events, fleet.events)

        wrong = good.model_copy(update={"kafka": good.kafka.model_copy(
            update={"client": scram_kafka.sasl_client_config(USER, "not-the-password")})})
        with running(Streamer(wrong)) as streamer:
            wait_for(lambda: "kafka" in streamer.health.reasons_not_ready
                     and "SASL authentication error" in streamer.health.reasons_not_ready["kafka"],
                     what="the broker to refuse the streamer's credentials")
            reason = streamer.health.reasons_not_ready["kafka"]
            assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in reason
            assert not streamer.health.ready()[0]
            assert counter(streamer, "vigil_events_consumed_total") == 0
            assert not streamer.status().assigned

        # No credentials at all: the SASL listener closes the connection of a plain client.
        plain = AdminClient({"bootstrap.servers": scram_kafka.sasl_address, "log_level": 0})
        with pytest.raises(KafkaException) as refused:
            plain.list_topics(timeout=5)
        assert refused.value.args[0].code() == KafkaError._TRANSPORT
        # ...while the same listener answers the right credentials, the same moment.
        assert AdminClient(good.kafka.client_config()).list_topics(timeout=10).topics.get(good.topics.events)


# -- Redis: an ACL user limited to Vigil's prefix ----------------------------------------------

def test_acl_user_streams_and_runs_every_vigil_command_within_its_prefix(settings, acl_redis):
    server, password = acl_redis.server, acl_redis.password
    acl_redis.admin.acl_log_reset()
    cfg = acl_settings(settings, server, password, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=12, days=1, seed=1203))
    sensors = fleet.events.sensor_id.unique()
    with topics_of(cfg):
        streamer = stream_all(cfg, fleet.events)  # Lua apply, offsets hash: as `vigil`
    assert counter(streamer, "vigil_buffer_writes_total", result="added") == len(fleet.events)
    assert streamer.settings.redis.key_prefix == ACL_PREFIX

    client = redis.Redis.from_url(redis_url(server, password))
    assert buffered(client, cfg, sensors) == len(fleet.events)
    buffer = RollingBuffer(client, BufferLayout.from_settings(cfg), cfg.topics.events)
    report = buffer.inspect(str(sensors[0]))  # `vigil inspect`: HGETALL, MGET, MEMORY USAGE
    assert report is not None and report["memory_bytes"] > 0
    # The alert journal: an alert recorded before its send, removed once its state is written.
    journal = AlertJournal(client, BufferLayout.from_settings(cfg), cfg.topics.events)
    journal.record({0: [PendingAlert("a1", str(sensors[0]), 1, {"alert_id": "a1", "alert_end": "1"})]})
    assert [a.alert_id for a in journal.pending([0, 1])[0]] == ["a1"]
    journal.remove({0: ["a1"]})
    assert journal.pending([0]) == {}
    # The trainer job: SCAN for the sensors' meta keys, then read their windows.
    sample = sample_buffers(buffer, tuple(cfg.features), cfg.label_column, max_sensors=100,
                            exclude_labelled=False, exclude_alerted=False)
    assert sample.scanned == len(sensors)
    # Model announcements: the trainer publishes, streamers subscribe, on `<prefix>:models`.
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(announcement_channel(ACL_PREFIX))
    assert client.publish(announcement_channel(ACL_PREFIX), "v1") == 1
    wait_for(lambda: (m := pubsub.get_message(timeout=0.1)) is not None and m["data"] == b"v1",
             timeout_s=10, what="the announcement")
    pubsub.close()
    client.close()
    other_db = redis.Redis.from_url(redis_url(server, password).replace("/0", "/3"))  # SELECT on connect
    assert other_db.ping()
    other_db.close()
    # Nothing Vigil sent was denied, not even what its clients swallow (redis-py's handshake extras).
    assert acl_redis.admin.acl_log() == []


def test_acl_user_is_refused_outside_its_prefix_and_without_its_password(acl_redis):
    server, password = acl_redis.server, acl_redis.password
    client = redis.Redis.from_url(redis_url(server, password))
    keys, channels, command = ("access one of the keys", "access one of the channels", "run the '{}' command")
    for attempt, refusal in ((lambda: client.set("other:key", "x"), keys),
                             (lambda: client.get("other:key"), keys),
                             (lambda: client.publish("other:models", "v1"), channels),
                             (lambda: client.flushall(), command.format("flushall")),
                             (lambda: client.config_get("requirepass"), command.format("config|get")),
                             (lambda: client.eval("return 1", 0), command.format("eval"))):
        # NoPermissionError is Redis's NOPERM reply (redis-py drops the code from the message).
        with pytest.raises(redis.exceptions.NoPermissionError, match=f"no permissions to {re.escape(refusal)}"):
            attempt()
    # A script cannot reach past the prefix either: ACLs are checked on every redis.call.
    escape = client.register_script("return redis.call('SET', 'other:key', 'x')")
    with pytest.raises(redis.ResponseError, match="can't access at least one of the keys"):
        escape(keys=[f"{ACL_PREFIX}:decoy"])
    client.close()

    # AuthenticationError is Redis's NOAUTH (no password: the default user is off) and WRONGPASS.
    for url, error in ((redis_url(server, None), "already authenticated|Authentication required"),
                       (redis_url(server, "wrong-password"), "invalid username-password pair")):
        anonymous = redis.Redis.from_url(url)
        with pytest.raises(redis.AuthenticationError, match=error):
            anonymous.ping()
        anonymous.close()


def test_the_documented_acl_line_is_the_shipped_one():
    doc = (REPO_ROOT / "docs" / "security.md").read_text()
    for line in ACL_FILE.read_text().splitlines():
        assert line in doc, f"docs/security.md does not show {ACL_FILE.name}'s line: {line}"


# -- Secrets stay out of logs and `vigil config show` ------------------------------------------

def cli_env(cfg) -> dict[str, str]:
    """The process environment for `vigil ...` with ``cfg``'s Kafka, Redis and topics (secrets included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(
        VIGIL_KAFKA__BOOTSTRAP_SERVERS=cfg.kafka.bootstrap_servers,
        VIGIL_KAFKA__CLIENT=json.dumps(cfg.kafka.client),
        VIGIL_REDIS__URL=cfg.redis.url.get_secret_value(),
        VIGIL_REDIS__KEY_PREFIX=cfg.redis.key_prefix,
        VIGIL_TOPICS__EVENTS=cfg.topics.events, VIGIL_TOPICS__SCORES=cfg.topics.scores,
        VIGIL_TOPICS__ALERTS=cfg.topics.alerts, VIGIL_TOPICS__DLQ=cfg.topics.dlq,
        VIGIL_STREAM__GROUP_ID=cfg.stream.group_id, VIGIL_STREAM__METRICS_PORT="0",
        VIGIL_LOG_FORMAT="json", VIGIL_LOG_LEVEL="debug",
    )
    return env


class StreamProcess:
    """`vigil stream --no-score` as a subprocess, its stdout and stderr in one file."""

    def __init__(self, cfg, log_file: Path):
        self.log_file = log_file
        with open(log_file, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "vigil.cli.main", "stream", "--no-score"],
                                         env=cli_env(cfg), stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def logged(self, text: str) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"vigil stream exited early ({self.proc.returncode}):\n{self.output()[-3000:]}")
        return text in self.output()

    def stop(self, patience_s: float = 60.0) -> str:
        """SIGTERM (drain and commit); a second SIGTERM (stop without draining) after ``patience_s``,
        e.g. for a streamer whose retry loop would wait out its grace period. The whole output."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(patience_s)
                except subprocess.TimeoutExpired:
                    self.proc.send_signal(signal.SIGTERM)
                    self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.output()


def test_passwords_never_reach_the_logs_or_config_show(settings, scram_kafka, acl_redis, tmp_path):
    server, redis_password = acl_redis.server, acl_redis.password
    kafka_password = scram_kafka.scram.users[USER]
    cfg = sasl_settings(settings, scram_kafka)
    cfg = cfg.model_copy(update={"redis": cfg.redis.model_copy(
        update={"url": SecretStr(redis_url(server, redis_password)), "key_prefix": ACL_PREFIX})})
    fleet = generate_fleet(FleetSpec(sensors=8, days=1, seed=1204))
    admin = acl_redis.admin
    offsets_key = f"{ACL_PREFIX}:offsets:{cfg.topics.events}"

    # Wrong passwords are secrets too, and error paths are where they would leak: one streamer
    # with a wrong Kafka password, one with a wrong Redis password (Kafka fine), both at once.
    # (Redis says WRONGPASS; redis-py keeps the reason only: "invalid username-password pair".)
    bad_kafka_password, bad_redis_password = (f"bad-{secrets.token_urlsafe(12)}" for _ in range(2))
    bad_kafka = cfg.model_copy(update={"kafka": cfg.kafka.model_copy(
        update={"client": scram_kafka.sasl_client_config(USER, bad_kafka_password)})})
    bad_redis = cfg.model_copy(update={
        "redis": cfg.redis.model_copy(update={"url": SecretStr(redis_url(server, bad_redis_password))}),
        "stream": cfg.stream.model_copy(update={"group_id": f"{cfg.stream.group_id}-bad-redis"}),
    })
    outputs = {}
    with topics_of(cfg):
        produce_frame(make_producer(cfg), cfg.topics.events, fleet.events)

        good = StreamProcess(cfg, tmp_path / "good.log")
        try:
            wait_for(lambda: good.logged('"streaming"') and admin.exists(offsets_key), what="the first applied batch")
            wait_for(lambda: sum(int(v) + 1 for v in admin.hvals(offsets_key)) == len(fleet.events),
                     what="every event applied")
        finally:
            outputs["good"] = good.stop()
        assert good.proc.returncode == 0, outputs["good"][-3000:]

        procs = {"bad kafka": StreamProcess(bad_kafka, tmp_path / "bad-kafka.log"),
                 "bad redis": StreamProcess(bad_redis, tmp_path / "bad-redis.log")}
        try:
            wait_for(lambda: procs["bad kafka"].logged("SASL authentication error"), what="the Kafka refusal logged")
            # Wrong Redis credentials are not an outage to wait out: a clear error, exit 1.
            wait_for(lambda: procs["bad redis"].proc.poll() is not None, what="the refused streamer to exit")
            assert procs["bad redis"].proc.returncode == 1
            assert "redis refused Vigil's credentials" in procs["bad redis"].output()
            assert "invalid username-password pair" in procs["bad redis"].output()
        finally:
            outputs.update((name, proc.stop(patience_s=3)) for name, proc in procs.items())

    shown = subprocess.run([sys.executable, "-m", "vigil.cli.main", "config", "show"], env=cli_env(cfg),
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    outputs["config show"] = shown.stdout + shown.stderr
    assert "sasl.password: '***'" in shown.stdout
    assert f"url: redis://{USER}:***@127.0.0.1:{REDIS_PORT}/0" in shown.stdout

    assert all(outputs.values())
    for name, text in outputs.items():
        for secret in (kafka_password, redis_password, bad_kafka_password, bad_redis_password):
            assert secret not in text, f"a password appears in the output of {name}"
    # The logs are JSON lines with the events that matter (and the passwords' absence means something).
    assert any(json.loads(line).get("event") == "streaming"
               for line in outputs["good"].splitlines() if line.startswith("{"))
