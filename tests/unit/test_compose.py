"""Static checks on docker-compose.yml, the Vigil Dockerfile and the Prometheus/Grafana files they
mount (no Docker engine needed): the compose file is valid against the Compose Specification's
JSON Schema (check-jsonschema's bundled copy, offline), and every Vigil command, variable, path and
port it uses exists in the repository and in Vigil itself."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.deploy_checks import (ROOT, parse_vigil_args, setting_for_env, settings_from_env,
                                      vigil_invocations_in_shell)
from vigil.registry import POINTER

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
SERVICES = {"kafka", "redis", "topics", "model-bootstrap", "streamer", "simulator", "trainer", "prometheus", "grafana"}
VIGIL_APPS = ("streamer", "trainer")
VIGIL_IMAGE = "vigil:latest"


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


def _vigil_services(services: dict) -> list[str]:
    return [name for name, service in services.items() if service.get("image") == VIGIL_IMAGE]


def test_vigil_services_are_the_expected_ones(services: dict) -> None:
    assert set(_vigil_services(services)) == {"topics", "model-bootstrap", "streamer", "simulator", "trainer"}


@pytest.mark.parametrize("name", ["topics", "model-bootstrap", "streamer", "simulator", "trainer"])
def test_vigil_apps_build_from_a_real_dockerfile(services: dict, name: str) -> None:
    service = services[name]
    assert service["image"] == "vigil:latest"
    assert _dockerfile(service).is_file()


@pytest.mark.parametrize("name", ["topics", "model-bootstrap", "streamer", "simulator", "trainer"])
def test_vigil_env_points_at_compose_services(services: dict, name: str) -> None:
    env = _env(services[name])
    host = env["VIGIL_KAFKA__BOOTSTRAP_SERVERS"].split(",")[0].rsplit(":", 1)[0]
    assert host == "kafka"
    assert re.match(r"rediss?://redis:\d+(/\d+)?$", env["VIGIL_REDIS__URL"])


def test_streamer_waits_for_healthy_services_and_topics(services: dict) -> None:
    deps = services["streamer"]["depends_on"]
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["redis"]["condition"] == "service_healthy"
    assert deps["topics"]["condition"] == "service_completed_successfully"


def test_trainer_waits_for_redis_the_first_model_and_the_simulated_fleet(services: dict) -> None:
    deps = services["trainer"]["depends_on"]
    assert deps["redis"]["condition"] == "service_healthy"
    assert deps["model-bootstrap"]["condition"] == "service_completed_successfully"
    assert deps["simulator"]["condition"] == "service_completed_successfully"


def _volume_mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """target → (source, read-only) for a service's short-syntax volumes."""
    out = {}
    for mount in service.get("volumes", []):
        source, target, *mode = str(mount).split(":")
        out[target] = (source, "ro" in mode)
    return out


@pytest.mark.parametrize("name", ("streamer", "trainer", "model-bootstrap"))
def test_the_models_volume_is_vigil_s_model_dir(services: dict, name: str, tmp_path: Path) -> None:
    settings = settings_from_env(_env(services[name]), tmp_path)
    source, read_only = _volume_mounts(services[name])[str(settings.models_path)]
    assert source == "models"
    # Streamers only read the registry; the trainer and the bootstrap write it.
    assert read_only == (name == "streamer")


def test_nothing_is_opt_in_via_profiles(services: dict) -> None:
    # `docker compose up` brings up the whole stack the issue lists, trainer and simulator included.
    assert not [name for name, service in services.items() if service.get("profiles")]


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
    instructions = _dockerfile_instructions(DOCKERFILE)
    users = [arg.split(":")[0] for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert users[-1] == "10001", "numeric, so Kubernetes' runAsNonRoot can verify it (deploy/k8s uses 10001)"
    entrypoints = [arg for op, arg in instructions if op == "ENTRYPOINT"]
    assert entrypoints and yaml.safe_load(entrypoints[-1]) == ["vigil"]


def test_streamer_serves_health_to_the_host_and_checks_it(services: dict) -> None:
    streamer = services["streamer"]
    assert streamer["environment"]["VIGIL_STREAM__METRICS_HOST"] == "0.0.0.0"
    assert streamer["environment"]["VIGIL_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:19092"
    assert "/healthz" in " ".join(streamer["healthcheck"]["test"])


# -- schema ----------------------------------------------------------------------------------------
def _check_compose_schema(path: Path) -> subprocess.CompletedProcess:
    # check-jsonschema bundles the Compose Specification's schema (vendor.compose-spec): no network.
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                           str(path)], capture_output=True, text=True, timeout=60)


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = _check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_check_catches_mistakes(compose: dict, tmp_path: Path) -> None:
    broken = dict(compose, services=dict(compose["services"]))
    broken["services"]["streamer"] = dict(broken["services"]["streamer"], healthchek={"test": ["CMD", "true"]})
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = _check_compose_schema(path)
    assert result.returncode != 0 and "healthchek" in result.stdout + result.stderr


# -- Vigil commands and settings -------------------------------------------------------------------
def _vigil_command_lines(service: dict) -> list[list[str]]:
    """Every `vigil ...` argument list a service runs: its command under the image's vigil
    entrypoint, or the vigil invocations inside a shell entrypoint's script."""
    entrypoint = service.get("entrypoint")
    command = service.get("command", [])
    if entrypoint is None:
        return [_words(command)]
    assert _words(entrypoint)[:2] == ["/bin/sh", "-c"], f"unexpected entrypoint {entrypoint}"
    script = command[0] if isinstance(command, list) else command
    return vigil_invocations_in_shell(script)


@pytest.mark.parametrize("name", ["topics", "model-bootstrap", "streamer", "simulator", "trainer"])
def test_every_vigil_command_exists_in_the_cli(services: dict, name: str) -> None:
    lines = _vigil_command_lines(services[name])
    assert lines and all(lines)
    for args in lines:
        parse_vigil_args(args)


@pytest.mark.parametrize("name", ["topics", "model-bootstrap", "streamer", "simulator", "trainer"])
def test_every_vigil_variable_is_a_setting_and_validates(services: dict, name: str, tmp_path: Path) -> None:
    env = _env(services[name])
    for variable in env:
        setting_for_env(variable)
    settings = settings_from_env(env, tmp_path)
    assert settings.log_format == "json"


def test_model_bootstrap_trains_once_on_the_fleet_it_simulates(services: dict, tmp_path: Path) -> None:
    bootstrap = services["model-bootstrap"]
    simulate, train = (parse_vigil_args(args) for args in _vigil_command_lines(bootstrap))
    assert simulate.command == "simulate" and train.command == "train"
    assert str(simulate.to_file) == str(train.events)
    # It is skipped when the registry already has a current model: the pointer file Vigil uses.
    settings = settings_from_env(_env(bootstrap), tmp_path)
    assert f"{settings.models_path}/{POINTER}" in bootstrap["command"][0]
    assert bootstrap["restart"] == "no"


def test_simulator_publishes_once_after_the_first_model_and_the_streamer(services: dict) -> None:
    simulator = services["simulator"]
    (line,) = _vigil_command_lines(simulator)
    args = parse_vigil_args(line)
    assert args.command == "simulate" and args.to_kafka
    # The truth file it writes after publishing is what makes a second `up` skip it; it lives on a
    # named volume whose mount point the image creates for the vigil user.
    assert f"[ -s {args.truth_out} ]" in simulator["command"][0]
    source, _ = _volume_mounts(simulator)[str(args.truth_out.parent)]
    assert source == "simulator"
    assert f"mkdir -p /var/lib/vigil/models {args.truth_out.parent}" in DOCKERFILE.read_text()
    deps = simulator["depends_on"]
    assert deps["model-bootstrap"]["condition"] == "service_completed_successfully"
    assert deps["streamer"]["condition"] == "service_healthy"
    assert deps["topics"]["condition"] == "service_completed_successfully"
    assert simulator["restart"] == "no"


def test_trainer_runs_on_a_schedule(services: dict) -> None:
    trainer = services["trainer"]
    args = parse_vigil_args(_words(trainer["command"]))
    assert args.command == "train" and args.from_redis
    assert args.repeat is not None and args.repeat.total_seconds() >= 3600
    # A run that finds too few sensors in Redis exits 1; Docker restarts it (with back-off).
    assert trainer["restart"] == "on-failure"


# -- Prometheus and Grafana ------------------------------------------------------------------------
def _bind_source(service: dict, target: str) -> Path:
    source, _ = _volume_mounts(service)[target]
    assert source.startswith("./"), f"{target} should be a bind mount from the repository"
    return ROOT / source


def test_bind_mounts_exist_in_the_repository(services: dict) -> None:
    for name, service in services.items():
        for target, (source, _) in _volume_mounts(service).items():
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"


def test_prometheus_scrapes_the_streamer_s_metrics_port(services: dict, tmp_path: Path) -> None:
    prometheus = services["prometheus"]
    config_path = next(a.split("=", 1)[1] for a in _words(prometheus["command"]) if a.startswith("--config.file="))
    config = yaml.safe_load(_bind_source(prometheus, config_path).read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vigil-streamer"]
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    settings = settings_from_env(_env(services["streamer"]), tmp_path)
    assert targets == [f"streamer:{settings.stream.metrics_port}"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert settings.stream.metrics_host == "0.0.0.0"


def test_grafana_provisions_the_prometheus_datasource_and_the_vigil_dashboard(services: dict) -> None:
    grafana = services["grafana"]
    provisioning = _bind_source(grafana, "/etc/grafana/provisioning")
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"  # the compose service, Prometheus' default port
    assert "prometheus" in grafana["depends_on"]
    provider = yaml.safe_load((provisioning / "dashboards" / "vigil.yml").read_text())["providers"][0]
    dashboards = _bind_source(grafana, provider["options"]["path"])
    assert (dashboards / "vigil.json").is_file()
    home = _env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (dashboards / home.rsplit("/", 1)[1]).is_file()


def test_third_party_images_are_pinned(services: dict) -> None:
    for name, service in services.items():
        image = service["image"]
        if image == VIGIL_IMAGE:
            assert "build" in service, f"{name}: vigil:latest is built here, never pulled"
            continue
        repository, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: pin {image} to a version"


# -- the Dockerfile --------------------------------------------------------------------------------
def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = [[]]
    for op, arg in _dockerfile_instructions(DOCKERFILE):
        if op == "FROM":
            stages.append([])
        stages[-1].append((op, arg))
    return stages  # stages[0]: the global ARGs before the first FROM


def test_dockerfile_is_multi_stage_on_a_pinned_slim_base() -> None:
    global_args = dict(arg.split("=", 1) for op, arg in _stages()[0] if op == "ARG" and "=" in arg)
    base = global_args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base), base
    stages = _stages()[1:]
    assert len(stages) >= 2
    for stage in stages:
        assert stage[0][1].split()[0] == "${PYTHON_IMAGE}", "every stage on the pinned base"
    names = [stage[0][1].split()[-1] for stage in stages]
    assert names[0] == "builder" and names[-1] == "runtime"


def test_runtime_stage_copies_the_environment_and_has_no_build_tools() -> None:
    runtime = _stages()[-1]
    copies = [arg for op, arg in runtime if op == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    text = " ".join(arg for _, arg in runtime)
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in text, f"the runtime stage should not run {tool}"
    env = " ".join(arg for op, arg in runtime if op == "ENV")
    assert "PATH=/opt/venv/bin:$PATH" in env


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for stage in _stages()[1:]:
        for op, arg in stage:
            if op != "COPY" or arg.startswith("--from="):
                continue
            *sources, _dest = arg.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                top = source.rstrip("/").split("/")[0]
                assert top not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_image_installs_tensorflow_cpu_within_pyproject_s_bound() -> None:
    args = {arg.split("=", 1)[0]: arg.split("=", 1)[1] for op, arg in _stages()[1] if op == "ARG" and "=" in arg}
    assert args["TF_PACKAGE"] == "tensorflow-cpu"
    script = ROOT / "deploy" / "docker" / "requirements.py"

    def requirements(*extra: str) -> list[str]:
        out = subprocess.run([sys.executable, str(script), str(ROOT / "pyproject.toml"), *extra],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        return out.splitlines()

    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (tensorflow,) = [d for d in declared if re.match(r"tensorflow\b(?![-_])", d)]
    bound = tensorflow[len("tensorflow"):]
    cpu = requirements("tensorflow-cpu")
    assert cpu == [f"tensorflow-cpu{bound}" if d == tensorflow else d for d in declared]
    gpu = requirements("tensorflow[and-cuda]", "jax[cuda12]")
    assert f"tensorflow[and-cuda]{bound}" in gpu and gpu[-1] == "jax[cuda12]"
    assert not [r for r in cpu if re.match(r"tensorflow(\[|[<>=!~ ]|$)", r)], "plain tensorflow must be swapped out"
