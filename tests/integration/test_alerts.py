"""The streamer and `vigil backtest` publish the same alerts for the same fleet (one policy, one
set of scoring points in event time), however the events arrive: here a whole fleet at once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from streamer.app import Streamer
from vigil.alerts.backtest import backtest
from vigil.cli.main import main
from vigil.events.frame import event_table
from vigil.kafka.clients import make_producer
from vigil.kafka.produce import produce_frame
from vigil.settings import AlertSettings
from vigil.simulate import FleetSpec, generate_fleet

from tests.integration.streaming import (READ_AHEAD, alerting_copy, counter, isolated_settings, read_all, running,
                                         topics_of, values, wait_consumed, wait_for)

SENSORS = 12
# No silence alerts, which only the stream can raise.
POLICY = {"for_points": 2, "for_duration": timedelta(hours=1), "clear_ratio": 0.8, "clear_for": timedelta(hours=1),
          "cooldown": timedelta(hours=6), "warmup_fraction": 0.5, "silent_bins": 0}


# read_ahead: the backlog is read and decoded during the applies, in a second thread.
@pytest.mark.parametrize("read_ahead", [False, True], ids=["default", "read-ahead"])
def test_a_fleet_published_at_once_gets_the_backtests_alert_ids(settings, registry, tmp_path, monkeypatch, read_ahead):
    # The default cadence (a bin), and consume calls that each hold days of a sensor's events.
    cfg = isolated_settings(settings, **READ_AHEAD[read_ahead])
    cfg = cfg.model_copy(update={"alerts": AlertSettings(**{**cfg.alerts.model_dump(), **POLICY})})
    fleet = generate_fleet(FleetSpec(sensors=SENSORS, days=10.6, alert_fraction=0.34, seed=808))
    models = alerting_copy(registry, tmp_path / "models", fleet.events, cfg)
    cfg = cfg.model_copy(update={"model_dir": models.root})
    events = fleet.events.sort_values("timestamp", kind="stable")  # in time order per sensor
    offline = backtest(models.load(), event_table(events, cfg.features, cfg.label_column), cfg)
    with topics_of(cfg):
        producer = make_producer(cfg)
        with running(Streamer(cfg)) as streamer:
            wait_for(lambda: streamer.models.active is not None, what="the model loaded")
            produce_frame(producer, cfg.topics.events, events)
            wait_consumed(streamer, len(events))
            wait_for(lambda: counter(streamer, "vigil_scores_published_total") >= len(offline.points),
                     what="every scoring point scored")
        online = values(read_all(cfg, cfg.topics.alerts))
        scores = values(read_all(cfg, cfg.topics.scores))

    assert sorted((r["sensor_id"], r["window_end"]) for r in scores) == sorted(
        zip(offline.points.sensor_id, offline.points.window_end.astype(int)))
    kinds = {r.kind for r in offline.alerts}
    assert kinds == {"alert", "cleared"}, "the fleet must exercise alerts and clears"
    assert sorted(r["alert_id"] for r in online) == sorted(r.alert_id for r in offline.alerts)
    # warm-up flags: published, and never on a score that alerted
    warming = {r["window_end"] for r in scores if r["sensor_id"] == online[0]["sensor_id"] and r["warming_up"]}
    assert warming and online[0]["window_end"] not in warming

    # `vigil backtest` on the same file writes those records in the sensor-alerts schema
    path = tmp_path / "fleet.parquet"
    events.to_parquet(path)
    truth = tmp_path / "truth.csv"
    fleet.truth.to_csv(truth, index=False)
    out = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("VIGIL_MODEL_DIR", str(models.root))
    for key, value in POLICY.items():
        text = f"{value.total_seconds()}s" if isinstance(value, timedelta) else str(value)
        monkeypatch.setenv(f"VIGIL_ALERTS__{key.upper()}", text)
    assert main(["backtest", "--events", str(path), "--truth", str(truth), "--alerts-out", str(out),
                 "--report", str(tmp_path / "report")]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["alert_id"] for r in written) == sorted(r["alert_id"] for r in online)
    assert (tmp_path / "report" / "index.html").is_file()
