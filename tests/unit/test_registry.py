import numpy as np
import pytest

from vigil.features import FleetStats, WindowSpec

from vigil.errors import VigilError
from vigil.model.training import TrainConfig, train_autoencoder
from vigil.registry import ModelMeta, ModelRegistry, resolve_model_dir


@pytest.fixture(scope="module")
def tiny_model():
    x = np.random.default_rng(0).normal(0, 1, (32, 6, 5)).astype(np.float32)  # 6 steps of one feature
    return train_autoencoder(x, TrainConfig(latent_dim=8, bottleneck=4, epochs=1, dense_epochs=1)), x


def _meta(version):
    return ModelMeta(version=version, created_at="2026-01-01T00:00:00+00:00", features=["a"], label_column=None,
                     window=WindowSpec(60_000, 6, 1).to_dict(),
                     fleet_stats=FleetStats(np.zeros(1), np.ones(1), 1.0).to_dict(),
                     threshold={"value": 0.5, "method": "quantile", "detail": {}}, metrics={}, training={})


def test_save_promote_load(tmp_path, tiny_model):
    model, x = tiny_model
    registry = ModelRegistry(tmp_path)
    assert registry.current_version() is None
    registry.save(model, _meta("v1"))
    assert registry.current_version() is None  # saving does not promote
    registry.promote("v1")
    loaded = registry.load()
    assert loaded.version == "v1" and loaded.threshold == 0.5 and loaded.spec.steps == 6
    # A model without heads (featurisation 4's artifacts) is scored by its autoencoder alone.
    assert loaded.detector is None
    assert np.allclose(loaded.score(x, heads=None), loaded.score(x, heads=None))
    registry.save(model, _meta("v2"))
    registry.promote("v2")
    assert registry.versions() == ["v1", "v2"] and registry.current_version() == "v2"
    registry.promote("v1")  # rollback
    assert registry.load().version == "v1"


def test_versions_are_immutable_and_pointer_targets_must_exist(tmp_path, tiny_model):
    registry = ModelRegistry(tmp_path)
    registry.save(tiny_model[0], _meta("v1"))
    with pytest.raises(VigilError, match="already exists"):
        registry.save(tiny_model[0], _meta("v1"))
    with pytest.raises(VigilError, match="no model version v9"):
        registry.promote("v9")
    assert not list(tmp_path.glob(".*"))  # no staging or pointer temp files left behind


def test_half_written_versions_are_invisible(tmp_path):
    (tmp_path / ".v3.partial").mkdir()
    (tmp_path / "v4").mkdir()  # no meta.json: not a version
    assert ModelRegistry(tmp_path).versions() == []


def test_model_dir_may_name_a_version(tmp_path, tiny_model):
    registry = ModelRegistry(tmp_path)
    registry.save(tiny_model[0], _meta("v1"))
    root, version = resolve_model_dir(tmp_path / "v1")
    assert root.root == tmp_path and version == "v1"
    root, version = resolve_model_dir(tmp_path)
    assert root.root == tmp_path and version is None


def test_compare_and_set_promotion_refuses_a_moved_pointer(tmp_path, tiny_model):
    from vigil.registry import PointerMoved

    model, _ = tiny_model
    registry = ModelRegistry(tmp_path)
    for v in ("v1", "v2", "v3"):
        registry.save(model, _meta(v))
    registry.promote("v1")
    registry.promote("v2", expected="v1")  # trainer A started from v1 and finishes first
    with pytest.raises(PointerMoved, match="another trainer"):
        registry.promote("v3", expected="v1")  # trainer B also started from v1
    assert registry.current_version() == "v2"


def test_prune_keeps_the_newest_and_the_current(tmp_path, tiny_model):
    model, _ = tiny_model
    registry = ModelRegistry(tmp_path)
    for v in ("v1", "v2", "v3", "v4"):
        registry.save(model, _meta(v))
    registry.promote("v1")
    assert registry.prune(2) == ["v2"]
    assert registry.versions() == ["v1", "v3", "v4"]


def test_gate_verdicts_are_stored_beside_the_version(tmp_path, tiny_model):
    model, _ = tiny_model
    registry = ModelRegistry(tmp_path)
    registry.save(model, _meta("v1"))
    assert registry.gate_of("v1") is None
    registry.write_file("v1", "gate.json", b'{"status": "rejected", "reason": "worse"}')
    assert registry.gate_of("v1") == {"status": "rejected", "reason": "worse"}


def test_models_cli_lists_gate_verdicts_and_rolls_back(tmp_path, tiny_model, capsys):
    import json

    from vigil.cli.main import main

    model, _ = tiny_model
    registry = ModelRegistry(tmp_path)
    for v in ("v1", "v2"):
        registry.save(model, _meta(v))
    registry.write_file("v2", "gate.json", b'{"status": "promoted", "reason": "first"}')
    registry.promote("v2")
    assert main(["models", "--model-dir", str(tmp_path), "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["current"] == "v2"
    assert [(r["version"], r["status"]) for r in listed["versions"]] == [("v1", "-"), ("v2", "promoted")]
    assert main(["models", "--model-dir", str(tmp_path), "promote", "v1"]) == 0
    assert registry.current_version() == "v1"
    assert main(["models", "--model-dir", str(tmp_path), "promote", "v9"]) == 1
    assert "no model version v9" in capsys.readouterr().err
