"""Static checks on docker-compose.yml and the Vigil Dockerfile (no Docker engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = {"kafka", "redis", "topics", "streamer", "trainer"}
VIGIL_APPS = ("streamer", "trainer")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    """A service's environment as a dict, whether written as a mapping or a KEY=VALUE list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _words(value: str | list) -> list[str]:
    return value.split() if isinstance(value, str) else [str(v) for v in value]


def _dockerfile(service: dict) -> Path:
    build = service["build"]
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def test_all_services_defined(services: dict) -> None:
    assert SERVICES <= set(services)


def test_kafka_is_apache_4x_in_kraft_combined_mode(services: dict) -> None:
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.\d+(\.\d+)?", kafka["image"])
    env = _env(kafka)
    roles = {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@")


def test_kafka_listeners_for_containers_and_host(services: dict) -> None:
    env = _env(services["kafka"])
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    assert "127.0.0.1:9092" in advertised.values()
    assert advertised["PLAINTEXT"] == "kafka:19092"
    # Every advertised listener is actually listened on, on the same port.
    for name, address in advertised.items():
        assert listeners[name].rsplit(":", 1)[1] == address.rsplit(":", 1)[1]
    assert listeners["CONTROLLER"].endswith(":9093")
    protocol_map = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocol_map)


def test_kafka_single_node_replication_and_healthcheck(services: dict) -> None:
    kafka = services["kafka"]
    env = _env(kafka)
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert "kafka-broker-api-versions.sh" in " ".join(_words(kafka["healthcheck"]["test"]))


def test_redis_uses_aof_every_second(services: dict) -> None:
    redis = services["redis"]
    assert redis["image"].split(":")[1].startswith("7")
    words = _words(redis["command"])
    assert words[0] == "redis-server"
    assert words[words.index("--appendonly") + 1] == "yes"
    assert words[words.index("--appendfsync") + 1] == "everysec"
    assert "ping" in _words(redis["healthcheck"]["test"])


def test_published_ports_bind_to_loopback_only(services: dict) -> None:
    published = [(name, str(p)) for name, svc in services.items() for p in svc.get("ports", [])]
    assert published, "expected kafka, redis and the streamer to publish ports"
    for name, port in published:
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert ("streamer", "127.0.0.1:9108:9108") in published


@pytest.mark.parametrize("name", VIGIL_APPS)
def test_vigil_apps_build_from_a_real_dockerfile(services: dict, name: str) -> None:
    service = services[name]
    assert service["image"] == "vigil:latest"
    assert _dockerfile(service).is_file()


@pytest.mark.parametrize("name", (*VIGIL_APPS, "topics"))
def test_vigil_env_points_at_compose_services(services: dict, name: str) -> None:
    env = _env(services[name])
    host = env["VIGIL_KAFKA__BOOTSTRAP_SERVERS"].split(",")[0].rsplit(":", 1)[0]
    assert host == "kafka"
    assert re.match(r"rediss?://redis:\d+(/\d+)?$", env["VIGIL_REDIS__URL"])


@pytest.mark.parametrize("name", VIGIL_APPS)
def test_vigil_apps_wait_for_healthy_services_and_topics(services: dict, name: str) -> None:
    deps = services[name]["depends_on"]
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["redis"]["condition"] == "service_healthy"
    assert deps["topics"]["condition"] == "service_completed_successfully"


def test_streamer_and_trainer_share_the_models_volume(services: dict) -> None:
    mounts = {name: set(services[name].get("volumes", [])) for name in VIGIL_APPS}
    shared = mounts["streamer"] & mounts["trainer"]
    assert any(str(m).endswith(":/var/lib/vigil/models") for m in shared)


def test_trainer_is_opt_in_via_profile(services: dict) -> None:
    assert services["trainer"].get("profiles") == ["trainer"]
    assert not services["streamer"].get("profiles")


def test_depends_on_names_defined_services(services: dict) -> None:
    for name, service in services.items():
        for dep in service.get("depends_on", []):
            assert dep in services, f"{name} depends on undefined service {dep}"


def test_named_volumes_are_declared(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount["source"] if isinstance(mount, dict) else str(mount).split(":", 1)[0]
            if source.startswith((".", "/", "~")):
                continue  # a bind mount, not a named volume
            assert source in declared, f"{name} mounts undeclared volume {source}"


def test_dockerfile_runs_vigil_as_non_root() -> None:
    instructions = _dockerfile_instructions(ROOT / "deploy" / "docker" / "Dockerfile")
    users = [arg.split(":")[0] for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    entrypoints = [arg for op, arg in instructions if op == "ENTRYPOINT"]
    assert entrypoints and yaml.safe_load(entrypoints[-1]) == ["vigil"]


def test_streamer_serves_health_to_the_host_and_checks_it(services: dict) -> None:
    streamer = services["streamer"]
    assert streamer["environment"]["VIGIL_STREAM__METRICS_HOST"] == "0.0.0.0"
    assert streamer["environment"]["VIGIL_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:19092"
    assert "/healthz" in " ".join(streamer["healthcheck"]["test"])
