"""The model runs on the JAX backend too: a model trained and saved under TensorFlow loads in safe
mode under JAX (a fresh process: the backend is chosen at import) and gives the same scores and
contributions, and a model trains under JAX end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vigil.events.frame import event_table
from vigil.features import WindowSpec
from vigil.features.dataset import build_windows, fleet_stats
from vigil.model.training import TrainConfig, make_scorer, train_autoencoder
from vigil.simulate import FleetSpec, generate_fleet

JAX_SCRIPT = """
import json, sys
import keras, numpy as np
from vigil.model.training import TrainConfig, make_scorer, train_autoencoder
assert keras.backend.backend() == "jax", keras.backend.backend()
x = np.load(sys.argv[1])
loaded = keras.saving.load_model(sys.argv[2], safe_mode=True)
scores, contributions = make_scorer(loaded).predict(x, verbose=0)
own = train_autoencoder(x, TrainConfig(epochs=2, dense_epochs=2, seed=3))
own_scores, _ = make_scorer(own).predict(x, verbose=0)
print(json.dumps({"scores": np.asarray(scores).tolist(), "contributions": float(np.asarray(contributions).sum()),
                  "own_finite": bool(np.isfinite(own_scores).all()), "own_latent": own.latent_dim}))
"""


def test_a_tensorflow_model_scores_the_same_under_jax_and_jax_trains_one(tmp_path):
    fleet = generate_fleet(FleetSpec(sensors=12, days=2, seed=21))
    table = event_table(fleet.events, fleet.spec.features, fleet.spec.label_column)
    spec = WindowSpec(86_400_000, 24, 2)
    stats = fleet_stats(table, spec)
    x = build_windows(table, spec, stats, every=20).x[:64]
    model = train_autoencoder(x, TrainConfig(epochs=2, dense_epochs=2, seed=3))
    scores, contributions = make_scorer(model).predict(x, verbose=0)
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "model.keras")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "x.npy"), str(tmp_path / "model.keras")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["scores"], np.asarray(scores).reshape(-1), rtol=1e-4, atol=1e-6)
    assert out["contributions"] == pytest.approx(float(np.asarray(contributions).sum()), rel=1e-4)
    assert out["own_finite"] and out["own_latent"] == model.latent_dim

