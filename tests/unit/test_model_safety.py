"""A broken or foreign model version is refused with a clear reason; the model in use stays."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vigil.features import FleetStats, WindowSpec

from streamer.model_watch import ModelWatcher, grid_refusal
from vigil.model.training import TrainConfig, train_autoencoder
from vigil.registry import META_FILE, MODEL_FILE, ModelMeta, ModelRegistry

FEATURES = ["a"]


@pytest.fixture(scope="module")
def tiny_model():
    x = np.random.default_rng(0).normal(0, 1, (32, 6, 4)).astype(np.float32)  # 6 steps of one feature, 4 channels
    return train_autoencoder(x, TrainConfig(latent_dim=8, bottleneck=4, epochs=1, dense_epochs=1))


def meta(version, features=FEATURES, length_ms=60_000):
    return ModelMeta(version=version, created_at="2026-01-01T00:00:00+00:00", features=features, label_column=None,
                     window=WindowSpec(length_ms, 6, 1).to_dict(),
                     fleet_stats=FleetStats(np.zeros(1), np.ones(1), 1.0).to_dict(),
                     threshold={"value": 0.5, "method": "quantile", "detail": {}}, metrics={}, training={})


def settle(watcher, version_in_use, rounds=200):
    """Poll until the watcher has nothing loading (a load runs in its background thread)."""
    for _ in range(rounds):
        watcher.poll()
        if watcher._loading is None and watcher.active is not None and watcher.active.version == version_in_use:
            return
        time.sleep(0.05)


@pytest.mark.parametrize("breakage", ["corrupt_model", "other_features", "longer_window", "finer_bins"])
def test_a_bad_new_version_is_refused_and_the_running_model_stays(tmp_path, tiny_model, breakage, capsys):
    registry = ModelRegistry(tmp_path)
    registry.save(tiny_model, meta("v1"))
    registry.promote("v1")
    watcher = ModelWatcher(registry, FEATURES, window_ms=60_000, max_batch=8, poll_s=0.0, bin_ms=10_000)
    assert watcher.wait_loaded(60).version == "v1"

    if breakage == "corrupt_model":
        registry.save(tiny_model, meta("v2"))
        (tmp_path / "v2" / MODEL_FILE).write_bytes(b"not a keras archive")
    elif breakage == "other_features":
        registry.save(tiny_model, meta("v2", features=["b"]))
    elif breakage == "longer_window":
        registry.save(tiny_model, meta("v2", length_ms=120_000))
    else:  # 6 bins of 5 s: the buffer's 10 s bins cannot be split
        registry.save(tiny_model, meta("v2", length_ms=30_000))
    registry.promote("v2")
    settle(watcher, "v1")
    assert watcher.active.version == "v1"
    assert "v2" in watcher._refused
    watcher.close()


def test_the_pointer_never_names_a_half_written_version(tmp_path, tiny_model):
    registry = ModelRegistry(tmp_path)
    (tmp_path / ".v9.partial").mkdir(parents=True)  # what a trainer killed mid-save leaves behind
    with pytest.raises(Exception, match="no model version v9"):
        registry.promote("v9")
    assert registry.current_version() is None and registry.versions() == []
    (tmp_path / "v8").mkdir()
    (tmp_path / "v8" / MODEL_FILE).write_bytes(b"x")  # a model without its meta.json is not a version
    assert not (tmp_path / "v8" / META_FILE).exists() and registry.versions() == []


def test_the_buffer_serves_windows_it_covers_with_bins_it_can_merge():
    hour = 3_600_000
    assert grid_refusal(240 * hour, hour, 240 * hour, hour) is None
    assert grid_refusal(120 * hour, 2 * hour, 240 * hour, hour) is None  # coarser bins, merged on read
    assert "longer than the buffer's" in grid_refusal(480 * hour, hour, 240 * hour, hour)
    assert "not a whole number" in grid_refusal(240 * hour, hour + hour // 2, 240 * hour, hour)
