"""Fixtures shared by the integration and fault tests: the real Kafka broker and Redis.

By default the tests use Vigil's local services: `vigil services up` is idempotent, so the README's
test command starts them first, and the ``settings`` fixture makes a bare `pytest
tests/integration` (or tests/faults) work too. With ``VIGIL_TEST_SERVICES=external`` they use the
Kafka and Redis the configuration names (``VIGIL_KAFKA__BOOTSTRAP_SERVERS``, ``VIGIL_REDIS__URL``),
already running, as confluent-kafka-python's tests use ``BROKERS``: nothing is started or stopped,
the topics are created if missing, and the tests that start, stop or restart servers themselves
skip and say why (:func:`own_services`).
"""

import os
import uuid

import pytest
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from vigil.errors import VigilError
from vigil.services import services_up
from vigil.settings import VigilSettings

MODES = ("local", "external")
MODE = os.environ.get("VIGIL_TEST_SERVICES") or "local"
EXTERNAL = MODE == "external"
OWN_SERVICES = ("VIGIL_TEST_SERVICES=external: this test starts, stops or restarts Kafka or Redis servers "
                "itself, which it must not do beside services it did not start")


def pytest_configure(config):
    if MODE not in MODES:
        raise pytest.UsageError(f"VIGIL_TEST_SERVICES={MODE!r}: use 'local' (the default: start Vigil's local "
                                "services) or 'external' (use the configured, running Kafka and Redis)")
    config.addinivalue_line("markers", "own_services: the test starts, stops or restarts Kafka or Redis itself")


def pytest_collection_modifyitems(items):
    for item in items:
        if any(part in str(item.fspath) for part in ("tests/integration/", "tests/faults/")):
            item.add_marker(pytest.mark.integration)
        if EXTERNAL and item.get_closest_marker("own_services"):
            item.add_marker(pytest.mark.skip(reason=OWN_SERVICES))


def own_services() -> None:
    """For a fixture that starts its own servers: skip, saying why, when the tests use external ones."""
    if EXTERNAL:
        pytest.skip(OWN_SERVICES)


@pytest.fixture(scope="session")
def settings() -> VigilSettings:
    settings = VigilSettings()
    if EXTERNAL:
        use_external(settings)
    else:
        services_up(settings)
    return settings


def use_external(settings: VigilSettings) -> None:
    """The configured Kafka and Redis answer, and the topics exist; a clear error otherwise."""
    from vigil.kafka.topics import ensure_topics
    from vigil.services.local import wait_consumer_groups, wait_producer_ids

    try:
        redis.Redis.from_url(settings.redis.url.get_secret_value(), socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"VIGIL_TEST_SERVICES=external, but Redis at {settings.redis.masked_url()} does not "
                           f"answer: {exc}") from None
    try:
        ensure_topics(settings)
    except (KafkaException, VigilError) as exc:
        raise RuntimeError(f"VIGIL_TEST_SERVICES=external, but the Kafka broker at "
                           f"{settings.kafka.bootstrap_servers} is not usable: {exc}") from None
    wait_consumer_groups(settings, settings.services.kafka_ready_timeout_s)
    wait_producer_ids(settings, settings.services.kafka_ready_timeout_s)


@pytest.fixture
def redis_client(settings):
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    yield client
    client.close()


@pytest.fixture
def fresh_topic(settings):
    """A topic of 6 partitions used by one test only, deleted afterwards."""
    admin = AdminClient(settings.kafka.client_config())
    name = f"it-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, num_partitions=6, replication_factor=1)])[name].result()
    yield name
    admin.delete_topics([name])[name].result()


DAY = 86_400_000


@pytest.fixture(scope="session")
def registry(settings, tmp_path_factory):
    """A quickly trained model (a few epochs): good enough to separate clear anomalies."""
    from trainer.fit import fit_and_register
    from vigil.events.frame import event_table
    from vigil.features import WindowSpec
    from vigil.model.config import TrainConfig
    from vigil.registry import ModelRegistry
    from vigil.simulate import FleetSpec, generate_fleet

    registry = ModelRegistry(tmp_path_factory.mktemp("models"))
    fleet = generate_fleet(FleetSpec(sensors=200, days=11, seed=101))
    table = event_table(fleet.events, settings.features, settings.label_column)
    spec = WindowSpec(10 * DAY, settings.window.steps, len(settings.features))
    fit_and_register(table, spec, TrainConfig(epochs=4, dense_epochs=30), registry,
                     min_events=settings.window.min_events)
    return registry
