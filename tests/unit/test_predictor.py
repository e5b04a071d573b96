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
