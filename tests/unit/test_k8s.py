"""The Kubernetes manifests in deploy/k8s: schema-valid (kubernetes-validate: the official OpenAPI
schemas of each Kubernetes release, bundled in the PyPI package, checked offline in strict mode so
an unknown or misspelt field fails), and consistent with Vigil itself: the probes hit the paths and
port of the streamer's health server, the commands parse with the real CLI, every VIGIL_* variable
is a real setting, and the model registry volume is shared as the trainer and streamers need it.

The variants (base, gpu, exactly-once) are kustomize overlays, rendered with `kubectl kustomize`
(or `kustomize build`); without either on PATH those tests skip, the raw files are still checked."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy_checks import ROOT, parse_vigil_args, setting_for_env, settings_from_env
from vigil.settings import StreamSettings

K8S = ROOT / "deploy" / "k8s"
VARIANTS = ("base", "gpu", "exactly-once")
# The oldest release the manifests promise to work on (CronJob timeZone and the PDB's
# unhealthyPodEvictionPolicy are GA in 1.31), and the newest whose schemas the validator carries.
K8S_VERSIONS = ("1.31.0", kubernetes_validate.utils.latest_version())
APP_UID = 10001  # the Dockerfile's USER
LABELS = {"app.kubernetes.io/name": "vigil", "app.kubernetes.io/component": "streamer"}


# -- loading -------------------------------------------------------------------------------------
def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def _kustomization(directory: Path) -> dict:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def _raw_resource_files() -> list[Path]:
    """Every file that a kustomization lists under `resources` (complete objects, not patches)."""
    files = []
    for kustomization in sorted(K8S.rglob("kustomization.yaml")):
        for entry in _kustomization(kustomization.parent).get("resources", []):
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                files.append(path)
    return files


@pytest.fixture(scope="module", params=VARIANTS)
def rendered(request) -> tuple[str, list[dict]]:
    command = _kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl on PATH: the overlays cannot be rendered here")
    result = subprocess.run([*command, str(K8S / request.param)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kustomize failed for {request.param}: {result.stderr}"
    return request.param, [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def _pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def _workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet"}]


def _streamer(docs: list[dict]) -> dict:
    (streamer,) = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet"} and d["metadata"]["name"] == "vigil-streamer"]
    return streamer


def _container(doc: dict, name: str | None = None) -> dict:
    containers = _pod_spec(doc)["containers"]
    return containers[0] if name is None else next(c for c in containers if c["name"] == name)


def _validate(doc: dict, version: str) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} against Kubernetes {version}: {path}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")


# -- schema --------------------------------------------------------------------------------------
def test_every_yaml_file_is_used_by_a_kustomization() -> None:
    used = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = _kustomization(kustomization.parent)
        used.add(kustomization.resolve())
        used |= {(kustomization.parent / e).resolve() for e in spec.get("resources", [])}
        used |= {(kustomization.parent / p["path"]).resolve() for p in spec.get("patches", []) if "path" in p}
    orphans = [p.relative_to(ROOT) for p in K8S.rglob("*.yaml") if p.resolve() not in used]
    assert not orphans, f"not referenced by any kustomization.yaml: {orphans}"
    assert {d for d in VARIANTS} == {p.parent.name for p in K8S.rglob("kustomization.yaml")}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_raw_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    files = _raw_resource_files()
    assert len(files) >= 8
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                _validate(doc, version)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_variants_validate_against_the_kubernetes_schemas(rendered, version: str) -> None:
    _, docs = rendered
    for doc in docs:
        _validate(doc, version)


def test_the_validator_is_strict_and_offline() -> None:
    # A misspelt field and a wrong type are both refused; the schemas come from the package itself.
    doc = yaml.safe_load((K8S / "base" / "streamer-deployment.yaml").read_text())
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)
    doc = yaml.safe_load((K8S / "base" / "streamer-pdb.yaml").read_text())
    doc["spec"]["maxUnavailable"] = [1]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (schemas / f"v{K8S_VERSIONS[0]}-local-strict" / "deployment-apps-v1.json").is_file()


def test_all_variants_render_the_same_kinds_of_objects(rendered) -> None:
    variant, docs = rendered
    kinds = {d["kind"] for d in docs}
    assert {"ConfigMap", "Secret", "PersistentVolumeClaim", "Service", "PodDisruptionBudget", "CronJob", "Job"} <= kinds
    assert ("StatefulSet" if variant == "exactly-once" else "Deployment") in kinds
    assert not ({"Deployment", "StatefulSet"} <= kinds), "the exactly-once overlay must replace the Deployment"


# -- the streamer --------------------------------------------------------------------------------
def test_streamer_probes_hit_the_health_server_s_paths_and_port(rendered, tmp_path: Path) -> None:
    _, docs = rendered
    container = _container(_streamer(docs))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = _env_of(docs, container)
    settings = settings_from_env(env, tmp_path)
    assert settings.stream.metrics_host == "0.0.0.0", "kubelet probes the pod IP: bind every interface"

    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        port = probe["port"]
        assert (ports[port] if isinstance(port, str) else port) == settings.stream.metrics_port

    # The paths are the real server's: start it and ask.
    from streamer.health import Health, serve
    from streamer.metrics import StreamMetrics

    server = serve("127.0.0.1", 0, StreamMetrics().registry, Health())
    try:
        port = server.server_address[1]
        for probe in probes.values():
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}{probe['path']}", timeout=5).status
            except urllib.error.HTTPError as exc:
                status = exc.code
            assert status in (200, 503), f"{probe['path']} answered {status}"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=5)
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_streamer_metrics_are_discoverable(rendered) -> None:
    _, docs = rendered
    streamer = _streamer(docs)
    template = streamer["spec"]["template"]
    container = _container(streamer)
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    service = _find(docs, "Service", "vigil-streamer-metrics")
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= {p["name"] for p in container["ports"]}


def test_streamer_has_resource_requests_and_runs_unprivileged(rendered) -> None:
    _, docs = rendered
    for workload in _workloads(docs):
        spec = _pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == APP_UID
        for container in spec["containers"]:
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), f"{workload['metadata']['name']}: requests {requests}"
            assert "memory" in container["resources"]["limits"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_pod_disruption_budget_covers_the_streamer(rendered) -> None:
    _, docs = rendered
    pdb = _find(docs, "PodDisruptionBudget")
    streamer = _streamer(docs)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= streamer["spec"]["template"]["metadata"]["labels"].items()
    assert pdb["spec"]["selector"]["matchLabels"] == LABELS
    assert ("maxUnavailable" in pdb["spec"]) != ("minAvailable" in pdb["spec"])
    assert streamer["spec"]["replicas"] >= 2, "a PDB over a single replica blocks every drain or protects nothing"


def test_streamer_replicas_do_not_exceed_the_events_partitions(rendered, tmp_path: Path) -> None:
    _, docs = rendered
    streamer = _streamer(docs)
    settings = settings_from_env(_env_of(docs, _container(streamer)), tmp_path)
    assert streamer["spec"]["replicas"] <= settings.topics.events_partitions


# -- configuration -------------------------------------------------------------------------------
def _env_of(docs: list[dict], container: dict) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: envFrom sources, then env (which wins).
    Values from the downward API stand in as a plausible pod name."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(_find(docs, "Secret", source["secretRef"]["name"])["stringData"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[item["name"]] = "vigil-streamer-0"
    return env


def test_every_vigil_variable_is_a_setting_and_every_pod_s_settings_validate(rendered, tmp_path: Path) -> None:
    _, docs = rendered
    for workload in _workloads(docs):
        for container in _pod_spec(workload)["containers"]:
            env = _env_of(docs, container)
            for name in env:
                if name.startswith("VIGIL_"):
                    setting_for_env(name)
            settings = settings_from_env(env, tmp_path)  # raises if a value does not validate
            assert str(settings.models_path) == "/var/lib/vigil/models"


def test_secrets_live_in_the_secret_and_nothing_secret_in_the_configmap(rendered) -> None:
    _, docs = rendered
    config = _find(docs, "ConfigMap", "vigil-config")["data"]
    secret = _find(docs, "Secret", "vigil-secrets")["stringData"]
    assert "VIGIL_REDIS__URL" in secret and "VIGIL_KAFKA__CLIENT" in secret
    assert not set(config) & set(secret)
    assert not [k for k in config if any(word in k.lower() for word in ("password", "secret", "token", "redis__url", "client"))]
    for workload in _workloads(docs):
        for container in _pod_spec(workload)["containers"]:
            refs = {next(iter(s.values()))["name"] for s in container["envFrom"]}
            assert refs == {"vigil-config", "vigil-secrets"}, f"{workload['metadata']['name']} misses config or secrets"


def test_every_container_command_is_a_vigil_command(rendered) -> None:
    _, docs = rendered
    seen = set()
    for workload in _workloads(docs):
        for container in _pod_spec(workload)["containers"]:
            command = container.get("command")
            assert command in (None, ["vigil"]), "the image's entrypoint is vigil; set args only"
            args = parse_vigil_args(container["args"])
            seen.add(args.command)
    assert {"stream", "train", "services"} <= seen


def test_images_are_tagged_and_one_per_variant(rendered) -> None:
    variant, docs = rendered
    images = {c["image"] for w in _workloads(docs) for c in _pod_spec(w)["containers"]}
    assert len(images) == 1, f"{variant}: several images {images}"
    (image,) = images
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest", f"{variant}: pin the image tag ({image})"
    assert tag.endswith("-gpu") == (variant == "gpu")


# -- the model registry --------------------------------------------------------------------------
def test_the_model_registry_is_one_readwritemany_volume_shared_by_streamer_and_trainer(rendered, tmp_path: Path) -> None:
    _, docs = rendered
    pvc = _find(docs, "PersistentVolumeClaim", "vigil-models")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]

    def mount(workload: dict) -> tuple[dict, dict]:
        spec = _pod_spec(workload)
        volume = next(v for v in spec["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == "vigil-models")
        container = spec["containers"][0]
        (m,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        settings = settings_from_env(_env_of(docs, container), tmp_path)
        assert m["mountPath"] == str(settings.models_path), "VIGIL_MODEL_DIR must be the mounted volume"
        return volume, m

    _, streamer_mount = mount(_streamer(docs))
    trainer_volume, trainer_mount = mount(_find(docs, "CronJob", "vigil-trainer"))
    assert streamer_mount.get("readOnly") is True, "streamers only read the registry"
    assert not trainer_mount.get("readOnly") and not trainer_volume["persistentVolumeClaim"].get("readOnly")


def test_trainer_cronjob_runs_the_trainer_job_one_at_a_time(rendered) -> None:
    _, docs = rendered
    cronjob = _find(docs, "CronJob", "vigil-trainer")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(cronjob["spec"]["schedule"].split()) == 5
    args = parse_vigil_args(_container(cronjob)["args"])
    assert args.command == "train" and args.from_redis and args.repeat is None, "cron schedules it: run once"
    assert _pod_spec(cronjob)["restartPolicy"] in {"Never", "OnFailure"}


# -- the variants --------------------------------------------------------------------------------
def test_gpu_variant_requests_gpus_for_streamer_and_trainer(rendered) -> None:
    variant, docs = rendered
    for workload in (_streamer(docs), _find(docs, "CronJob", "vigil-trainer")):
        resources = _container(workload)["resources"]
        gpus = {kind: resources.get(kind, {}).get("nvidia.com/gpu") for kind in ("requests", "limits")}
        if variant == "gpu":
            assert gpus["requests"] == gpus["limits"] == "1", f"{workload['metadata']['name']}: {gpus}"
            assert any(t["key"] == "nvidia.com/gpu" for t in _pod_spec(workload)["tolerations"])
        else:
            assert gpus == {"requests": None, "limits": None}


def test_exactly_once_statefulset_is_the_deployment_plus_a_stable_instance_id(tmp_path: Path) -> None:
    deployment = yaml.safe_load((K8S / "base" / "streamer-deployment.yaml").read_text())
    statefulset = yaml.safe_load((K8S / "exactly-once" / "streamer-statefulset.yaml").read_text())
    assert statefulset["spec"]["selector"] == deployment["spec"]["selector"]
    assert statefulset["spec"]["serviceName"] == "vigil-streamer-metrics"
    template = statefulset["spec"]["template"]
    container = template["spec"]["containers"][0]
    env = {e["name"]: e for e in container.pop("env")}
    assert env["VIGIL_STREAM__INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["VIGIL_STREAM__DELIVERY"]["value"] == "exactly-once"
    assert template == deployment["spec"]["template"], "keep the StatefulSet's pod template in step with the Deployment's"
    # A StatefulSet pod name is a valid instance id, and the delivery mode is a real one.
    StreamSettings(instance_id="vigil-streamer-12", delivery="exactly-once")


def test_exactly_once_variant_renders_the_governing_headless_service(rendered) -> None:
    variant, docs = rendered
    if variant != "exactly-once":
        pytest.skip("StatefulSet only")
    statefulset = _find(docs, "StatefulSet", "vigil-streamer")
    service = _find(docs, "Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert _find(docs, "ConfigMap")["data"]["VIGIL_STREAM__DELIVERY"] == "at-least-once"  # overridden by env
    env = _env_of(docs, _container(statefulset))
    assert env["VIGIL_STREAM__DELIVERY"] == "exactly-once"

