import numpy as np
import pytest

from vigil.model.threshold import choose_threshold, window_metrics


def test_f1_optimal_threshold_on_labelled_windows():
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.8, 0.9, 0.4])
    labels = np.array([0, 0, 0, 0, 1, 1, 0], dtype=float)
    t = choose_threshold(scores, labels)
    assert t.method == "f1_optimal" and t.value == pytest.approx(0.8)
    assert t.detail["f1"] == pytest.approx(1.0)


def test_quantile_of_normal_scores_without_labels():
    scores = np.linspace(0, 1, 1001)
    t = choose_threshold(scores, np.full(1001, np.nan), quantile=0.99)
    assert t.method == "quantile" and t.value == pytest.approx(0.99)


def test_one_class_labels_fall_back_to_the_quantile():
    t = choose_threshold(np.linspace(0, 1, 101), np.zeros(101))
    assert t.method == "quantile"


def test_window_metrics_at_a_threshold():
    scores = np.array([0.1, 0.6, 0.7, 0.2, 0.9, np.nan][:5])
    labels = np.array([0, 1, 0, 0, 1], dtype=float)
    m = window_metrics(scores, labels, 0.5)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == 1.0
    assert m["n_windows"] == 5 and m["n_positive"] == 2
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert m["alert_rate"] == pytest.approx(0.6)


def test_metrics_without_labels_are_null_not_made_up():
    m = window_metrics(np.array([0.1, 0.2]), np.array([np.nan, np.nan]), 0.15)
    assert m["roc_auc"] is None and m["pr_auc"] is None and m["f1"] is None
