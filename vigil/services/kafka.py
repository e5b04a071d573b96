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
from pathlib import Path

from confluent_kafka.admin import AdminClient

from vigil.errors import VigilError
from vigil.logging import get_logger
from vigil.services.paths import deploy_file
from vigil.services.process import ManagedProcess, port_open

MIN_JAVA = 17
log = get_logger("services.kafka")


class LocalKafka:
    def __init__(self, root: Path, host: str, port: int, controller_port: int, heap: str):
        self.root = root
        self.host, self.port, self.controller_port, self.heap = host, port, controller_port, heap
        self.libs = root / "libs"
        self.data = root / "data"
        self.config = root / "server.properties"
        self.process = ManagedProcess("kafka", root / "kafka.pid", root / "logs" / "stdout.log", str(self.config))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

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
        self.config.write_text(
            "process.roles=broker,controller\n"
            "node.id=1\n"
            f"controller.quorum.bootstrap.servers={h}:{c}\n"
            f"listeners=PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{c}\n"
            f"advertised.listeners=PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{c}\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "controller.listener.names=CONTROLLER\n"
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n"
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
        return pid

    def wait_ready(self, timeout_s: float) -> None:
        """Ready = a real client gets cluster metadata from the broker."""
        # log_level 0: librdkafka would print "connection refused" until the broker listens.
        admin = AdminClient({"bootstrap.servers": self.address, "log_level": 0})
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
                    f"Kafka did not answer on {self.address} within {timeout_s:.0f}s; "
                    f"see {self.log_path}"
                )
            time.sleep(0.5)

    def ports_taken(self) -> list[int]:
        return [p for p in (self.port, self.controller_port) if port_open(self.host, p)]


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
