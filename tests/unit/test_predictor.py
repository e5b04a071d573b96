import json
import subprocess
import sys

import numpy as np
import pytest

from vigil.model.autoencoder import EncoderLatentAutoencoder
from vigil.model.predictor import BatchPredictor
from vigil.model.training import make_scorer


@pytest.fixture(scope="module")
def scorer():
    model = EncoderLatentAutoencoder(12, 5, latent_dim=8, bottleneck=3)
    model.build((None, 12, 5))
    return make_scorer(model)


def test_buckets_are_powers_of_two_within_bounds(scorer):
    predict = BatchPredictor(scorer, max_batch=100, min_bucket=8)
    assert [predict.bucket(n) for n in (1, 8, 9, 33, 64, 65, 100)] == [8, 8, 16, 64, 64, 100, 100]
    assert predict.buckets() == [8, 16, 32, 64, 100]


def test_padded_batches_score_like_one_window_at_a_time(scorer):
    x = np.random.default_rng(0).normal(size=(37, 12, 5)).astype(np.float32)
    predict = BatchPredictor(scorer, max_batch=16)
    batched = predict(x)
    single = [scorer.predict(x[i : i + 1], verbose=0) for i in range(len(x))]
    assert batched.scores.shape == (37,) and batched.contributions.shape == (37, 12, 5)
    np.testing.assert_allclose(batched.scores, np.concatenate([s.reshape(-1) for s, _ in single]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(batched.contributions, np.concatenate([c for _, c in single]), rtol=1e-5, atol=1e-6)


def test_empty_input_gives_no_scores(scorer):
    assert BatchPredictor(scorer)(np.empty((0, 12, 5), np.float32)).scores.shape == (0,)


def test_scores_alone_skip_the_contributions_copy(scorer):
    x = np.random.default_rng(1).normal(size=(20, 12, 5)).astype(np.float32)
    predict = BatchPredictor(scorer, max_batch=16)
    alone = predict(x, with_contributions=False)
    assert alone.contributions is None
    np.testing.assert_array_equal(alone.scores, predict(x).scores)


# A fresh interpreter: whether this pytest process already asked TensorFlow for deterministic kernels
# (any test that trained did) must not decide what the test sees.
XLA_CHECK = """
import json, keras, numpy as np
from vigil.model.autoencoder import EncoderLatentAutoencoder
from vigil.model.predictor import BatchPredictor
from vigil.model.training import make_scorer, seed_everything
model = EncoderLatentAutoencoder(12, 5, latent_dim=8, bottleneck=3)
model.build((None, 12, 5))
scorer = make_scorer(model)
x = np.random.default_rng(2).normal(size=(37, 12, 5)).astype(np.float32)
predict = BatchPredictor(scorer, max_batch=16, xla_from=16)
mixed = predict(x[:21]).scores  # a bucket of 16, then one of 8
report = {"backend": keras.backend.backend(), "xla_from": predict.xla_from,
          "full_on_twin": predict.model_for(16) is not scorer,
          "twin_xla": bool(predict.model_for(16).jit_compile),
          "small_on_scorer": predict.model_for(8) is scorer,
          "twin_kept": predict.model_for(16) is BatchPredictor(scorer).model_for(512),
          "mixed": mixed.tolist(),
          "plain": BatchPredictor(scorer, max_batch=16, xla_from=None)(x[:21]).scores.tolist()}
seed_everything(0)
report["after_seeding"] = BatchPredictor(scorer, max_batch=16, xla_from=16).xla_from
print(json.dumps(report))
"""


def test_full_batches_use_an_xla_twin_except_in_a_process_with_deterministic_kernels():
    out = subprocess.run([sys.executable, "-c", XLA_CHECK], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if report["backend"] == "torch":
        assert report["xla_from"] is None
    else:
        assert report["xla_from"] == 16
        assert report["full_on_twin"] and report["twin_xla"], "a full bucket is not scored with XLA"
        assert report["small_on_scorer"], "a smaller bucket left the plain scorer"
        assert report["twin_kept"], "each predictor compiled its own twin"
    assert report["after_seeding"] is None, "a process with deterministic kernels kept XLA"
    np.testing.assert_allclose(report["mixed"], report["plain"], rtol=1e-5, atol=1e-7)
