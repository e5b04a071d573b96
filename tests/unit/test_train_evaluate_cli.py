"""`vigil train` and `vigil evaluate` on small synthetic files, through the real CLI entry point."""

import json
import os

import pandas as pd
import pytest

from vigil.cli.main import main
from vigil.events.files import write_events
from vigil.model.detector import SCORE_HEADS
from vigil.registry import ModelRegistry
from vigil.simulate import FleetSpec, generate_fleet

FAST = ["--window", "1d", "--steps", "24", "--epochs", "3", "--latent-dim", "16", "--every", "20", "--seed", "2"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    train = generate_fleet(FleetSpec(sensors=40, days=3, mean_interval_s=900, alert_fraction=0.1, seed=1))
    test = generate_fleet(FleetSpec(sensors=30, days=3, mean_interval_s=900, alert_fraction=0.1, seed=2))
    events = train.events.copy()
    events["timestamp"] = pd.to_datetime(events.timestamp, unit="ms", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
    return {"train": write_events(events, root / "train.csv"), "test": write_events(test.events, root / "test.jsonl"),
            "root": root}


@pytest.fixture(scope="module")
def trained(files):
    models = files["root"] / "models"
    env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("VIGIL_")}
    try:
        assert main(["train", "--events", str(files["train"]), "--model-dir", str(models), *FAST]) == 0
    finally:
        os.environ.update(env)
    return models


def test_train_writes_a_complete_version_and_points_current_at_it(trained):
    registry = ModelRegistry(trained)
    version = registry.current_version()
    assert registry.versions() == [version]
    files = sorted(p.name for p in (trained / version).iterdir())
    assert files == ["meta.json", "model.keras"]
    meta = json.loads((trained / version / "meta.json").read_text())
    assert meta["features"] == ["feature_1", "feature_2"]
    assert meta["window"]["length_ms"] == 86_400_000 and meta["window"]["steps"] == 24
    assert meta["threshold"]["method"] in ("f1_optimal", "quantile") and meta["threshold"]["value"] > 0
    assert meta["training"]["sensors"] == {"train": 32, "validation": 8}
    assert len(meta["training"]["data"]["sha256"]) == 64
    assert set(meta["fleet_stats"]) >= {"mean", "std", "count_per_bin"}
    assert meta["window"]["baseline"] == "window"  # auto: 3 days of history hold no 4 windows of 1 day
    assert meta["training"]["config"]["latent_dim"] == 16  # as given (FAST)
    assert meta["window"]["groups"] == ["level", "spread", "extreme", "count"]  # the default channels
    assert meta["detector"]["heads"] == list(SCORE_HEADS)  # the calibrated heads travel with the model
    assert meta["training"]["config"]["decoder"] == "dense"
    assert meta["metrics"]["n_windows"] > 0


def test_evaluate_last_writes_one_scored_window_per_sensor(files, trained, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    code = main(["evaluate", "--events", str(files["test"]), "--model-dir", str(trained), "--last",
                 "--scores-out", str(out), "--report", str(tmp_path / "report")])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(metrics) >= {"roc_auc", "pr_auc", "f1", "precision", "recall", "threshold", "n_windows", "n_positive"}
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["sensor_id", "window_start", "window_end", "n_events", "score", "alert", "label",
                                    "top_features", "span_start", "span_end"]
    assert (pd.to_datetime(scores.window_end) - pd.to_datetime(scores.window_start) == pd.Timedelta("1D")).all()
    assert (scores.n_events > 0).all()
    assert scores.top_features.str.split(";").map(
        lambda names: set(names) <= {"feature_1", "feature_2", "event_rate"}).all()
    assert (scores.span_start >= scores.window_start).all() and (scores.span_end <= scores.window_end).all()
    assert len(scores) == 30 and scores.sensor_id.is_unique
    assert scores.window_end.str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").all()
    assert set(scores.alert) <= {0, 1} and (scores.alert == (scores.score >= metrics["threshold"])).all()
    assert metrics["n_positive"] == scores.label.sum() == 3
    page = (tmp_path / "report" / "index.html").read_text()
    alerted = scores[scores.alert == 1].sensor_id.nunique()
    # histogram, PR and ROC curves, and the alerted windows with their spans
    assert page.count("data:image/png;base64,") == 3 + min(alerted, 4)


def test_evaluate_every_k_scores_a_window_at_every_kth_event(files, trained, tmp_path, capsys):
    out = tmp_path / "scores.parquet"
    assert main(["evaluate", "--events", str(files["test"]), "--model-dir", str(trained), "--every", "10",
                 "--scores-out", str(out)]) == 0
    scores = pd.read_parquet(out)
    events = pd.read_json(files["test"], lines=True)
    expected = sum((len(g) + 9) // 10 for _, g in events.groupby("sensor_id"))
    assert len(scores) == expected
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_windows"] == expected


def test_evaluate_without_a_model_is_a_clear_error(files, tmp_path, capsys):
    assert main(["evaluate", "--events", str(files["test"]), "--model-dir", str(tmp_path / "none")]) == 1
    assert "no current model" in capsys.readouterr().err


def test_train_with_a_missing_feature_is_a_clear_error(files, tmp_path, capsys):
    code = main(["train", "--events", str(files["train"]), "--model-dir", str(tmp_path), "--features", "feature_1,pressure"])
    assert code == 1
    assert "lacks column(s) ['pressure']" in capsys.readouterr().err


def test_train_takes_the_channel_groups_and_the_pretraining_decoder(files, tmp_path):
    args = ["train", "--events", str(files["train"]), "--model-dir", str(tmp_path), *FAST, "--epochs", "1",
            "--channels", "level, cross,count", "--decoder", "lstm"]
    assert main(args) == 0
    loaded = ModelRegistry(tmp_path).load()
    assert loaded.spec.groups == ("level", "cross", "count")
    assert loaded.spec.channels == 2 + 2 + 1 and loaded.model.decoder == "lstm"


def test_train_with_an_unknown_channel_group_is_a_clear_error(files, tmp_path, capsys):
    code = main(["train", "--events", str(files["train"]), "--model-dir", str(tmp_path), "--channels", "level,colour"])
    assert code == 1
    assert "unknown channel groups ['colour']" in capsys.readouterr().err
