import numpy as np

from trainer.gate import gate

rng = np.random.default_rng(0)
LABELS = np.r_[np.zeros(90), np.ones(10)]
GOOD = np.r_[rng.normal(0, 1, 90), rng.normal(3, 1, 10)]
NOISE = rng.normal(0, 1, 100)


def test_labelled_windows_compare_pr_auc():
    verdict = gate(NOISE, 1.0, GOOD, 1.0, LABELS)
    assert verdict["rule"] == "pr_auc" and not verdict["promote"]
    assert verdict["candidate"] < verdict["current"] and "worse than" in verdict["reason"]
    assert gate(GOOD, 1.0, NOISE, 1.0, LABELS)["promote"]


def test_a_margin_tolerates_a_slightly_worse_candidate():
    slightly = GOOD.copy()
    slightly[:3] += 2.5  # three normal windows now score high
    assert not gate(slightly, 1.0, GOOD, 1.0, LABELS, pr_auc_margin=0.0)["promote"]
    assert gate(slightly, 1.0, GOOD, 1.0, LABELS, pr_auc_margin=0.5)["promote"]


def test_unlabelled_windows_compare_false_positive_rates_at_each_threshold():
    unlabelled = np.full(100, np.nan)
    scores = rng.normal(0, 1, 100)
    quiet = gate(scores, 2.0, scores, 1.0, unlabelled)  # candidate alerts on fewer normal windows
    assert quiet["rule"] == "false_positive_rate" and quiet["promote"]
    noisy = gate(scores, 0.0, scores, 2.0, unlabelled)
    assert not noisy["promote"] and noisy["candidate"] > noisy["current"]


def test_too_few_labelled_anomalies_fall_back_to_false_positive_rates():
    labels = np.r_[np.zeros(98), np.ones(2)]
    verdict = gate(GOOD, 1.0, GOOD, 1.0, labels)
    assert verdict["rule"] == "false_positive_rate" and verdict["n_anomalous"] == 2


def test_a_current_model_this_vigil_cannot_score_is_replaced_and_the_gate_says_why(tmp_path):
    import json

    from trainer.refit import refit
    from vigil.events.frame import event_table
    from vigil.features import WindowSpec
    from vigil.model.config import TrainConfig
    from vigil.registry import ModelRegistry
    from vigil.simulate import FleetSpec, generate_fleet

    hour = 3_600_000
    fleet = generate_fleet(FleetSpec(sensors=16, days=1.0, alert_fraction=0.0, seed=3))
    table = event_table(fleet.events, ["feature_1", "feature_2"], fleet.spec.label_column)
    spec = WindowSpec(6 * hour, 12, 2)
    config = TrainConfig(epochs=1, dense_epochs=1, latent_dim=8, bottleneck=2)
    registry = ModelRegistry(tmp_path)
    first = refit(table, None, spec, config, registry, min_events=3)
    assert first.promoted
    # The current version as an older Vigil wrote it: featurisation 3.
    meta_path = tmp_path / first.version / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["window"]["version"] = 3
    meta_path.write_text(json.dumps(meta))
    second = refit(table, None, spec, config, registry, min_events=3)
    assert second.promoted and registry.current_version() == second.version
    assert "cannot be scored by this Vigil" in second.gate["reason"] and "older Vigil" in second.gate["reason"]
