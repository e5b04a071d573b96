"""The encoder-latent autoencoder: the question's toy case, the collapse, saving, seeds."""

from pathlib import Path

import keras
import numpy as np
import pytest

from vigil.model.autoencoder import EncoderLatentAutoencoder
from vigil.model.training import TrainConfig, latent_spread, make_scorer, score_windows, train_autoencoder

TOY = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], dtype=np.float32).reshape(1, 9, 1)


def test_the_questions_toy_sequence_trains_and_predicts_a_latent_reconstruction():
    model = train_autoencoder(TOY, TrainConfig(epochs=30, dense_epochs=30, seed=1))
    reconstruction = model.predict(TOY, verbose=0)
    assert model.latent_dim == 8  # the latent follows the window: 9 x 1 values need no 100-wide latent
    assert reconstruction.shape == (1, 8)
    score = score_windows(make_scorer(model), TOY)
    assert score.shape == (1,) and np.isfinite(score).all()


def _varied_sequences(n=256, steps=9, seed=0):
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.1, 0.9, steps)[None, :, None]
    return (ramp * rng.uniform(0.2, 2.0, (n, 1, 1)) + rng.normal(0, 0.3, (n, 1, 1))).astype(np.float32)


def test_remedy_keeps_latent_variance_where_the_naive_objective_collapses():
    x = _varied_sequences()
    untrained = EncoderLatentAutoencoder(9, 1, objective="naive")
    untrained.build((None, 9, 1))
    before = latent_spread(untrained, x)
    # The question's objective: the encoder is trained against its own output.
    # The question's widths (100 → 32 → 100), as the untrained encoder above has.
    naive = train_autoencoder(x, TrainConfig(latent_dim=100, bottleneck=32, objective="naive", epochs=30,
                                             learning_rate=1e-2, patience=100))
    ours = train_autoencoder(x, TrainConfig(latent_dim=100, bottleneck=32, epochs=30, dense_epochs=10,
                                            learning_rate=1e-2, patience=100))
    after_naive, after_ours = latent_spread(naive, x), latent_spread(ours, x)
    assert after_naive < 0.5 * before  # collapsing towards a constant encoder
    assert after_ours > before  # pretraining makes the latent more informative, not less
    assert after_ours > 10 * after_naive


@pytest.fixture(scope="module")
def small_model():
    x = np.random.default_rng(3).normal(0, 1, (64, 12, 3)).astype(np.float32)
    return train_autoencoder(x, TrainConfig(latent_dim=16, bottleneck=4, epochs=3, dense_epochs=3, seed=3)), x


def test_saved_model_loads_in_safe_mode_and_scores_the_same(small_model, tmp_path):
    model, x = small_model
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, EncoderLatentAutoencoder)
    assert loaded.get_config()["latent_dim"] == 16 and loaded.objective == "pretrain_freeze"
    assert np.allclose(score_windows(make_scorer(loaded), x), score_windows(make_scorer(model), x), rtol=1e-5)
    # The explanation's normaliser travels with the model.
    assert np.allclose(loaded.channel_error.numpy(), model.channel_error.numpy())
    assert not np.allclose(model.channel_error.numpy(), 1.0)


def test_same_seed_same_model_on_the_cpu():
    x = np.random.default_rng(4).normal(0, 1, (48, 8, 2)).astype(np.float32)
    config = TrainConfig(latent_dim=8, bottleneck=4, epochs=2, dense_epochs=2, seed=11)
    a = score_windows(make_scorer(train_autoencoder(x, config)), x)
    b = score_windows(make_scorer(train_autoencoder(x, config)), x)
    c = score_windows(make_scorer(train_autoencoder(x, TrainConfig(**{**config.to_dict(), "seed": 12}))), x)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_anomalous_windows_score_higher_than_normal_ones():
    rng = np.random.default_rng(5)
    t = np.linspace(0, 2 * np.pi, 24)
    normal = (np.sin(t + rng.uniform(0, 2 * np.pi, (400, 1))) + rng.normal(0, 0.05, (400, 24)))[..., None]
    odd = normal[:40].copy()
    odd[:, 12:, 0] += 2.0  # a level shift half-way
    model = train_autoencoder(normal.astype(np.float32), TrainConfig(latent_dim=32, bottleneck=8, epochs=15, seed=5))
    scorer = make_scorer(model)
    s_normal = score_windows(scorer, normal[40:80].astype(np.float32))
    s_odd = score_windows(scorer, odd.astype(np.float32))
    assert np.median(s_odd) > np.quantile(s_normal, 0.9)
    # The contributions point at the shifted half of the window.
    _, contributions = scorer.predict(odd.astype(np.float32), verbose=0)
    assert contributions[:, 12:].sum() > 3 * contributions[:, :12].sum()


def test_model_code_stays_backend_agnostic():
    # keras.layers / keras.ops only: the model must run on TensorFlow, JAX and PyTorch.
    source = Path(__file__).resolve().parents[2] / "vigil" / "model"
    for name in ("autoencoder.py", "layers.py"):
        text = (source / name).read_text()
        assert "tensorflow" not in text and "tf." not in text and "import torch" not in text, name


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective must be one of"):
        EncoderLatentAutoencoder(9, 1, objective="magic")
