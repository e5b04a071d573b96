"""A fleet published at once to a cold stream: what it alerts, against the truth and `vigil backtest`.

``vigil simulate``'s fleet (``--sensors`` 200 x ``--days`` 10, ``--seed`` 5; anomalies in the last
10-40% of it) is published in one go, in time order, to fresh topics, and the real ``Streamer``
with default settings reads it from a cold buffer. Once every event is consumed and every scoring
point scored, the bench reads the alerts and reports, per sensor: recall (truly anomalous sensors
alerted after their onset) and precision (of the sensors alerted, those truly anomalous and
alerted after the onset); the median lead; whether the alert ids equal ``vigil backtest``'s on the
same file; and the seconds from the first event consumed to the last point scored.

Baseline in the same run: the same events through the same code with ``stream.score_every`` 0
(every new event makes a window ready, coalesced per batch: the readiness rule before scoring
points), so a backlog gets one score per sensor per batch. Each run has its own topics and Redis
prefix.

The model: ``--model-dir``'s current one, or one trained first as ``vigil demo --retrain`` trains
it (a fleet of the same size, seed + 1000, the ``vigil train`` defaults).

Last line: one JSON object with the cadence's figures at the top level, the baseline's under
``every_event`` and ``recall_ratio_vs_every_event``.

    .venv/bin/python bench/replay.py                        # trains first: about 10 minutes on 2 cores
    .venv/bin/python bench/replay.py --model-dir var/models # reuse a model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import (bench_settings, create_topics, delete_groups, delete_prefix, delete_topics, log,  # noqa: E402
                     quiet_logs, redis_client, run_id)
from streamer.app import Streamer  # noqa: E402
from vigil.alerts.backtest import backtest  # noqa: E402
from vigil.alerts.outcome import alert_outcome, alertable_days, truth_onsets  # noqa: E402
from vigil.cli import train_cmd  # noqa: E402
from vigil.events.frame import event_table  # noqa: E402
from vigil.kafka.clients import make_consumer, make_producer  # noqa: E402
from vigil.kafka.produce import produce_frame  # noqa: E402
from vigil.kafka.reading import end_offsets, read_from  # noqa: E402
from vigil.registry import ModelRegistry  # noqa: E402
from vigil.simulate import FleetSpec, generate_fleet  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sensors", type=int, default=200, help="fleet size (default 200)")
    p.add_argument("--days", type=float, default=10.0, help="days of events (default 10)")
    p.add_argument("--seed", type=int, default=5, help="the fleet's seed (default 5)")
    p.add_argument("--model-dir", help="use this registry's current model instead of training one")
    p.add_argument("--no-baseline", action="store_true", help="skip the every-event run")
    p.add_argument("--timeout", type=float, default=900.0, help="most seconds a run may take to drain (900)")
    return p.parse_args(argv)


def train(root: str, args: argparse.Namespace) -> str:
    spec = FleetSpec(sensors=args.sensors, days=args.days, seed=args.seed + 1000, id_prefix="train-")
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "train.parquet"
        generate_fleet(spec).events.to_parquet(events)
        log(f"training on {args.sensors} sensors x {args.days:g} days (seed {spec.seed}), vigil train's defaults")
        settings = bench_settings("replay-train", run_id())
        if train_cmd.train(train_cmd.parse(["--events", str(events), "--model-dir", root]), settings) != 0:
            raise RuntimeError("training failed")
    return ModelRegistry(root).current_version()


def stream_at_once(events, model_dir: str, score_every: str | None, timeout_s: float, expected_points: int | None):
    """Publish ``events`` at once to a fresh stream; returns (alerts, scores, seconds to drain)."""
    rid = run_id()
    extra = {} if score_every is None else {"score_every": score_every}
    settings = bench_settings("replay", rid, **extra).model_copy(update={"model_dir": model_dir})
    client, created = redis_client(settings), []
    streamer = Streamer(settings)
    consumed = lambda: streamer.metrics.registry.get_sample_value("vigil_events_consumed_total") or 0  # noqa: E731
    scored = lambda: streamer.metrics.registry.get_sample_value("vigil_scores_published_total") or 0  # noqa: E731
    try:
        created = create_topics(settings, settings.topics.partitions())
        thread = threading.Thread(target=streamer.run, daemon=True)
        thread.start()
        while streamer.models.active is None or not streamer.status().assigned:
            time.sleep(0.1)
        producer = make_producer(settings)
        produce_frame(producer, settings.topics.events, events)
        producer.flush(60)
        log(f"  published {len(events):,} events (score_every {score_every or 'default'})")
        started, last, seen = None, time.monotonic(), -1.0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if started is None and consumed() > 0:
                started = time.monotonic()
            now_scored = scored()
            if now_scored != seen:
                seen, last = now_scored, time.monotonic()
            status = streamer.status()
            settled = consumed() >= len(events) and not status.pending_offsets and not status.ready
            if settled and (now_scored >= expected_points if expected_points is not None
                            else time.monotonic() - last > 3.0):
                break
            time.sleep(0.1)
        else:
            log(f"  NOT drained within {timeout_s:g} s: consumed {consumed():,.0f}, scored {scored():,.0f}")
        seconds = time.monotonic() - (started or time.monotonic())
        log(f"  drained: {consumed():,.0f} events consumed, {scored():,.0f} windows scored in {seconds:.1f} s")
        streamer.stop()
        thread.join(120)
        alerts = read_topic(settings, settings.topics.alerts)
        scores = read_topic(settings, settings.topics.scores)
        return alerts, scores, seconds
    finally:
        delete_groups(settings, [settings.stream.group_id])
        delete_topics(settings, created)
        delete_prefix(client, settings.redis.key_prefix)


def read_topic(settings, topic: str) -> list[dict]:
    consumer = make_consumer(settings, group_id=f"{settings.stream.group_id}-reader")
    ends = end_offsets(consumer, topic)
    out = [json.loads(m.value()) for m in read_from(consumer, topic, dict.fromkeys(ends, 0),
                                                     expected=sum(ends.values()), timeout_s=30)]
    consumer.close()
    return out


def figures(alerts: list[dict], scores: list[dict], truth, seconds: float, n_events: int) -> dict:
    import pandas as pd

    onsets = truth_onsets(truth)
    outcome = alert_outcome(alerts, alertable_days(pd.DataFrame(scores)) if scores else {}, onsets=onsets)
    anomalous = {s for s, onset in onsets.items() if onset is not None}
    alerted = {r["sensor_id"] for r in alerts if r["kind"] == "alert"}
    true_alerted = set(outcome.get("lead_hours", {}))
    return {
        "sensor_recall": round(len(true_alerted & anomalous) / len(anomalous), 3) if anomalous else None,
        "sensor_precision": round(len(true_alerted) / len(alerted), 3) if alerted else None,
        "sensors_alerted": len(alerted), "anomalous_sensors": len(anomalous),
        "alert_precision": outcome.get("alert_precision"), "median_lead_hours": outcome.get("median_lead_hours"),
        "alerts": sum(r["kind"] == "alert" for r in alerts), "windows_scored": len(scores),
        "drain_s": round(seconds, 1), "events_per_s": round(n_events / seconds) if seconds else None,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_logs()
    tmp = tempfile.TemporaryDirectory(prefix="vigil-bench-replay-")
    model_dir = args.model_dir or tmp.name
    if args.model_dir is None:
        train(model_dir, args)
    fleet = generate_fleet(FleetSpec(sensors=args.sensors, days=args.days, seed=args.seed))
    events = fleet.events.sort_values("timestamp", kind="stable")
    settings = bench_settings("replay", run_id())
    loaded = ModelRegistry(model_dir).load()
    offline = backtest(loaded, event_table(events, settings.features, settings.label_column), settings)
    log(f"fleet {args.sensors} x {args.days:g} d (seed {args.seed}): {len(events):,} events; "
        f"backtest: {len(offline.points):,} scoring points, {len(offline.alerts)} alert records")
    report = {}
    alerts, scores, seconds = stream_at_once(events, model_dir, None, args.timeout, len(offline.points))
    report.update(figures(alerts, scores, fleet.truth, seconds, len(events)))
    report["alert_ids_equal_backtest"] = (sorted(r["alert_id"] for r in alerts)
                                          == sorted(r.alert_id for r in offline.alerts))
    report["backtest_points"] = len(offline.points)
    if not args.no_baseline:
        alerts, scores, seconds = stream_at_once(events, model_dir, "0", args.timeout, None)
        report["every_event"] = figures(alerts, scores, fleet.truth, seconds, len(events))
        base = report["every_event"]["sensor_recall"]
        report["recall_ratio_vs_every_event"] = round(report["sensor_recall"] / base, 3) if base else None
    tmp.cleanup()
    rows = [("cadence (default)", report)] + ([("every event", report["every_event"])] if "every_event" in report else [])
    print(f"\nA {args.sensors}-sensor, {args.days:g}-day fleet published at once to a cold stream (model {loaded.version})")
    print(f"{'scoring':<18} {'recall':>7} {'precision':>9} {'alerted':>7} {'lead h':>7} {'scores':>8} {'drain s':>8}")
    for name, r in rows:
        print(f"{name:<18} {r['sensor_recall'] or 0:>7.3f} {r['sensor_precision'] or 0:>9.3f} {r['sensors_alerted']:>7} "
              f"{r['median_lead_hours'] or 0:>7.2f} {r['windows_scored']:>8,} {r['drain_s']:>8.1f}")
    print(f"alert ids equal vigil backtest's: {report['alert_ids_equal_backtest']}")
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
