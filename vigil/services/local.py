"""``vigil services up|down|status``: the local Kafka broker and Redis server, together."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from vigil.errors import VigilError
from vigil.kafka.clients import make_consumer
from vigil.kafka.groups import wait_group_ready
from vigil.kafka.topics import TopicState, ensure_topics
from vigil.logging import get_logger
from vigil.services.kafka import LocalKafka
from vigil.services.redis import LocalRedis
from vigil.settings import VigilSettings

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
log = get_logger("services")


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    address: str
    pid: int | None
    log_file: str
    started_now: bool = False


def local_kafka(settings: VigilSettings) -> LocalKafka:
    first = settings.kafka.bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    _require_local("Kafka", host, settings.kafka.bootstrap_servers)
    svc = settings.services
    return LocalKafka(settings.data_dir / "kafka", "127.0.0.1", int(port), svc.kafka_controller_port, svc.kafka_heap)


def local_redis(settings: VigilSettings) -> LocalRedis:
    url = urlsplit(settings.redis.url.get_secret_value())
    _require_local("Redis", url.hostname or "", settings.redis.masked_url())
    return LocalRedis(settings.data_dir / "redis", "127.0.0.1", url.port or 6379)


def _require_local(what: str, host: str, where: str) -> None:
    if host not in LOCAL_HOSTS:
        raise VigilError(f"{what} is configured at {where}, not on 127.0.0.1: `vigil services` only runs local services")


def services_up(settings: VigilSettings) -> tuple[list[ServiceStatus], list[TopicState]]:
    """Start Redis and Kafka unless ours already run, then create the topics. Idempotent."""
    redis_svc, kafka_svc = local_redis(settings), local_kafka(settings)
    _refuse_foreign_ports(redis_svc, kafka_svc)
    statuses = []
    for svc, timeout in ((redis_svc, settings.services.redis_ready_timeout_s),
                         (kafka_svc, settings.services.kafka_ready_timeout_s)):
        pid = svc.process.pid()
        started = pid is None
        if started:
            log.info("starting", service=svc.process.name, address=svc.address)
            pid = svc.start(timeout)
        else:
            svc.wait_ready(timeout)  # ours and running: make sure it answers, too
        statuses.append(_status(svc, pid, started))
    topics = ensure_topics(settings)
    wait_consumer_groups(settings, settings.services.kafka_ready_timeout_s)
    wait_producer_ids(settings, settings.services.kafka_ready_timeout_s)
    return statuses, topics


READY_PROBE = "vigil-ready-probe"  # the probe's consumer group and transactional id


def wait_producer_ids(settings: VigilSettings, timeout_s: float) -> None:
    """A young broker also hands out producer ids late (the transaction coordinator loads): every
    idempotent producer then logs "Failed to acquire idempotence PID ... retrying". Returns once a
    probe's transactional id is registered, which needs both."""
    producer = Producer(settings.kafka.client_config(**{"transactional.id": READY_PROBE, "log_level": 0}))
    try:
        producer.init_transactions(timeout_s)
    except KafkaException as exc:
        raise VigilError(f"Kafka could not hand out producer ids within {timeout_s:.0f}s ({exc}); "
                         "check `vigil services status` and the broker log") from None


def wait_consumer_groups(settings: VigilSettings, timeout_s: float) -> None:
    """Ready means ready: a broker answers metadata before its group coordinator has loaded, and
    the first consumer to commit then fails. Returns once a probe group commits and fetches."""
    consumer = make_consumer(settings, READY_PROBE)
    try:
        wait_group_ready(consumer, settings.topics.events, timeout_s)
    finally:
        consumer.close()
    admin = AdminClient(settings.kafka.client_config())
    for future in admin.delete_consumer_groups([READY_PROBE], request_timeout=10).values():
        try:
            future.result()
        except KafkaException:
            pass  # it only costs a line in the group listing


def _refuse_foreign_ports(*services: LocalKafka | LocalRedis) -> None:
    for svc in services:
        if svc.process.pid() is not None:
            continue
        taken = svc.ports_taken()
        if taken:
            ports = ", ".join(str(p) for p in taken)
            raise VigilError(
                f"cannot start {svc.process.name}: port {ports} on {svc.host} is taken by a process that "
                f"vigil did not start (see `ss -ltnp`); stop it or configure another port "
                f"(VIGIL_KAFKA__BOOTSTRAP_SERVERS, VIGIL_SERVICES__KAFKA_CONTROLLER_PORT, VIGIL_REDIS__URL)"
            )


def services_down(settings: VigilSettings) -> list[ServiceStatus]:
    """Stop what `up` started (Kafka first: it may still flush to disk), by pid file only."""
    out = []
    for svc in (local_kafka(settings), local_redis(settings)):
        pid = svc.process.stop()
        out.append(ServiceStatus(svc.process.name, False, svc.address, pid, str(svc.log_path)))
    return out


def services_status(settings: VigilSettings) -> list[ServiceStatus]:
    return [_status(svc, svc.process.pid(), False) for svc in (local_redis(settings), local_kafka(settings))]


def _status(svc: LocalKafka | LocalRedis, pid: int | None, started: bool) -> ServiceStatus:
    return ServiceStatus(svc.process.name, pid is not None, svc.address, pid, str(svc.log_path), started)
