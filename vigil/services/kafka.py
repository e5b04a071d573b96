"""A single-node Apache Kafka 4.x broker (KRaft, combined broker+controller) from Maven jars.

The jars come from Maven Central through ``deploy/local/kafka/pom.xml`` (``mvn
dependency:copy-dependencies``); Maven's ~/.m2 and the copied ``libs/`` directory (stamped with
the pom's hash) make every start after the first take seconds.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

from vigil.errors import VigilError
from vigil.logging import get_logger
from vigil.services.paths import deploy_file
from vigil.services.process import ManagedProcess, port_open

MIN_JAVA = 17
SCRAM_ITERATIONS = 8192
log = get_logger("services.kafka")


@dataclass(frozen=True)
class ScramListener:
    """An extra ``SASL_PLAINTEXT`` listener that accepts SCRAM users only (off unless asked for).

    The PLAINTEXT listener stays: inter-broker traffic, readiness and administration use it, so
    this is for trying client authentication locally, not for securing the broker. The users'
    credentials are upserted through the PLAINTEXT listener at every start (they live in the
    KRaft metadata), so they apply to an existing data directory as well.
    """

    port: int
    users: Mapping[str, str] = field(repr=False)  # user name → password (never in a repr)
    mechanism: str = "SCRAM-SHA-256"

    def __post_init__(self) -> None:
        if self.mechanism not in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise VigilError(f"unsupported SASL mechanism {self.mechanism!r}: SCRAM-SHA-256 or SCRAM-SHA-512")
        if not self.users:
            raise VigilError("a SCRAM listener needs at least one user")


class LocalKafka:
    def __init__(self, root: Path, host: str, port: int, controller_port: int, heap: str,
                 scram: ScramListener | None = None):
        self.root = root
        self.host, self.port, self.controller_port, self.heap = host, port, controller_port, heap
        self.scram = scram
        self.libs = root / "libs"
        self.data = root / "data"
        self.config = root / "server.properties"
        self.process = ManagedProcess("kafka", root / "kafka.pid", root / "logs" / "stdout.log", str(self.config))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _sasl(self) -> ScramListener:
        if self.scram is None:
            raise VigilError("this broker has no SASL listener")
        return self.scram

    @property
    def sasl_address(self) -> str:
        return f"{self.host}:{self._sasl().port}"

    def sasl_client_config(self, user: str, password: str | None = None) -> dict[str, str]:
        """librdkafka options (``kafka.client`` in settings) for ``user`` on the SASL listener;
        ``password`` defaults to the user's own."""
        scram = self._sasl()
        return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": scram.mechanism,
                "sasl.username": user, "sasl.password": scram.users[user] if password is None else password}

    @property
    def log_path(self) -> Path:
        return self.root / "logs" / "server.log"

    def ensure_jars(self) -> None:
        """Copy the broker's jars from Maven (cached in ~/.m2) unless the pom is unchanged."""
        pom = deploy_file("kafka/pom.xml")
        stamp = self.libs / ".pom.sha256"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        if stamp.is_file() and stamp.read_text() == digest:
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise VigilError("Maven (mvn) is not installed; it fetches the Kafka jars: apt-get install maven")
        java_home_check()
        if self.libs.exists():
            shutil.rmtree(self.libs)
        log.info("fetching Kafka jars from Maven Central", pom=str(pom))
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={self.libs.resolve()}", "-DincludeScope=runtime"],
            capture_output=True, text=True,
        )
        if result.returncode != 0 or not any(self.libs.glob("kafka_2.13-*.jar")):
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise VigilError("mvn could not fetch the Kafka jars:\n" + "\n".join(tail))
        stamp.write_text(digest)

    def write_config(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        c, h = self.controller_port, self.host
        listeners = f"PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{c}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        sasl = ""
        if self.scram is not None:
            mechanism = self.scram.mechanism
            listeners += f",SASL_PLAINTEXT://{h}:{self.scram.port}"
            protocols += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            # The broker side of SCRAM needs the login module only: user credentials are in KRaft.
            sasl = (
                f"listener.name.sasl_plaintext.sasl.enabled.mechanisms={mechanism}\n"
                f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
            )
        self.config.write_text(
            "process.roles=broker,controller\n"
            "node.id=1\n"
            f"controller.quorum.bootstrap.servers={h}:{c}\n"
            f"listeners={listeners}\n"
            f"advertised.listeners={listeners}\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "controller.listener.names=CONTROLLER\n"
            f"listener.security.protocol.map={protocols}\n"
            f"{sasl}"
            f"log.dirs={self.data.resolve()}\n"
            "num.partitions=1\n"
            "offsets.topic.replication.factor=1\n"
            "transaction.state.log.replication.factor=1\n"
            "transaction.state.log.min.isr=1\n"
            "share.coordinator.state.topic.replication.factor=1\n"
            "share.coordinator.state.topic.min.isr=1\n"
            "group.initial.rebalance.delay.ms=0\n"
            # Messages up to 1 MiB plus headers; oversized events are rejected by the producer.
            "message.max.bytes=1048588\n"
        )

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            java_home_check(), f"-Xmx{heap}", "-cp", f"{self.libs.resolve()}/*",
            f"-Dlog4j2.configurationFile={deploy_file('kafka/log4j2.yaml')}",
            f"-Dkafka.logs.dir={(self.root / 'logs').resolve()}",
            main, *args,
        ]

    def format_storage(self) -> None:
        """Format the KRaft log directory once; later starts reuse it (and its topics)."""
        if (self.data / "meta.properties").is_file():
            return
        cluster_id = _kafka_cluster_id()
        result = subprocess.run(
            # --cluster-id=ID: an id may start with "-", which argparse would read as an option.
            self._java("kafka.tools.StorageTool", "format", "--standalone", "-g",
                       f"--cluster-id={cluster_id}", "-c", str(self.config)),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise VigilError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def start(self, ready_timeout_s: float) -> int:
        self.ensure_jars()
        self.write_config()
        self.format_storage()
        pid = self.process.start(self._java("kafka.Kafka", str(self.config), heap=self.heap))
        self.wait_ready(ready_timeout_s)
        if self.scram is not None:
            self.upsert_scram_users()
            # Ready for SASL clients once the new credentials reached the broker's metadata cache.
            user = next(iter(self.scram.users))
            self._wait_answering({"bootstrap.servers": self.sasl_address, **self.sasl_client_config(user)},
                                 self.sasl_address, ready_timeout_s)
        return pid

    def wait_ready(self, timeout_s: float) -> None:
        """Ready = a real client gets cluster metadata from the broker."""
        self._wait_answering({"bootstrap.servers": self.address}, self.address, timeout_s)

    def _wait_answering(self, config: dict[str, Any], where: str, timeout_s: float) -> None:
        # log_level 0: librdkafka would print "connection refused" until the broker listens.
        admin = AdminClient({**config, "log_level": 0})
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.pid() is None:
                raise VigilError(f"Kafka exited during start-up; last log lines:\n{self.process.log_tail()}")
            try:
                if admin.list_topics(timeout=2).brokers:
                    return
            except Exception:  # noqa: BLE001 (KafkaException until the broker answers)
                pass
            if time.monotonic() > deadline:
                raise VigilError(
                    f"Kafka did not answer on {where} within {timeout_s:.0f}s; "
                    f"see {self.log_path}"
                )
            time.sleep(0.5)

    def upsert_scram_users(self) -> None:
        """Create or update the SCRAM listener's users (through the PLAINTEXT listener)."""
        scram = self._sasl()
        mechanism = ScramMechanism[scram.mechanism.replace("-", "_")]
        admin = AdminClient({"bootstrap.servers": self.address, "log_level": 0})
        upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, SCRAM_ITERATIONS),
                                                password.encode())
                   for user, password in scram.users.items()]
        for user, future in admin.alter_user_scram_credentials(upserts).items():
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 (KafkaException: say which user)
                raise VigilError(f"could not set the SCRAM credentials of Kafka user {user!r}: {exc}") from None

    def ports_taken(self) -> list[int]:
        ports = [self.port, self.controller_port] + ([self.scram.port] if self.scram else [])
        return [p for p in ports if port_open(self.host, p)]


@functools.cache
def java_home_check() -> str:
    """The java binary, checked to be Java 17 or newer (once per process: it runs `java -version`)."""
    java = shutil.which("java")
    if java is None:
        raise VigilError(f"Java is not installed; Kafka 4 needs Java {MIN_JAVA}+: apt-get install openjdk-17-jre-headless")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise VigilError(f"Kafka 4 needs Java {MIN_JAVA}+, found: {out.splitlines()[0] if out else 'unknown'}")
    return java


def _kafka_cluster_id() -> str:
    # Kafka's cluster id is a UUID in URL-safe base64 without padding (what `random-uuid` prints).
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
