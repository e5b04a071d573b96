"""``vigil demo``: the main job end to end on a synthetic fleet.

1. start the local Kafka and Redis; 2. train a model on a synthetic fleet (or reuse the current
one); 3. start ``vigil stream`` as its own process; 4. publish a *fresh* fleet (other sensors,
other seed) to the events topic; 5. show alerts live as the streamer publishes them; 6. stop the
streamer (SIGTERM: it drains and commits) and print a summary against the fleet's truth.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import TopicPartition

from vigil.cli import train_cmd
from vigil.cli.args import add_model_dir, positive_int
from vigil.cli.output import Progress, table
from vigil.cli.services_cmd import print_services
from vigil.cli.simulate_cmd import add_fleet_arguments, fleet_spec
from vigil.cli.tail_cmd import describe
from vigil.durations import DAY_MS, HOUR_MS
from vigil.errors import VigilError
from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.produce import produce_frame
from vigil.kafka.groups import commit_offsets, committed_offsets
from vigil.kafka.reading import end_offsets, read_from
from vigil.services import services_up
from vigil.services.process import port_open
from vigil.settings import VigilSettings
from vigil.simulate import FleetSpec, generate_fleet

GROUP = "vigil-demo"
WARMUP_DAYS = 9.0  # published at once: no alert can open before a window is 95% full (9.5 of 10 days)
PACE_MS = HOUR_MS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="train, stream a synthetic fleet through Kafka and Redis, and show the alerts live",
        description=(
            "Start the local services, train a model on a synthetic fleet (unless a current model "
            "exists; --retrain forces it), start the streamer, publish a fresh synthetic fleet (5% "
            "alerting sensors) to the events topic, print alerts as they are published, then stop "
            "the streamer and summarise: events, windows scored, alerts, and which sensors were "
            "truly anomalous."
        ),
    )
    add_fleet_arguments(parser, sensors=200, days=14.0, seed=7)
    parser.add_argument("--train-sensors", type=positive_int, default=300, help="sensors in the training fleet (default %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=8, help="encoder training epochs (default %(default)s)")
    parser.add_argument("--retrain", action="store_true", help="train a new model even if one is current")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up waiting for the streamer after this many seconds")
    add_model_dir(parser)
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, settings: VigilSettings) -> int:
    if args.model_dir:
        settings = settings.model_copy(update={"model_dir": args.model_dir})
    print("==> services")
    statuses, _topics = services_up(settings)
    print_services(statuses, as_json=False)

    print("\n==> model")
    version = _model(args, settings)

    run_id = secrets.token_hex(3)
    # Anomalies start once windows are full (10 days), so the policy's warm-up does not hide them.
    onsets = args.onsets or (round(0.78 * args.days, 2), round(0.96 * args.days, 2))
    fleet = generate_fleet(fleet_spec(args, settings, id_prefix=f"demo-{run_id}-", onset_days=onsets))
    truth = fleet.truth.set_index("sensor_id")
    consumer = make_consumer(settings, group_id=f"vigil-demo-watch-{run_id}")
    start_events = end_offsets(consumer, settings.topics.events)
    start_alerts = end_offsets(consumer, settings.topics.alerts)
    start_scores = end_offsets(consumer, settings.topics.scores)
    _start_group_at(settings, start_events)

    print(f"\n==> streamer (model {version})")
    log_path = settings.data_dir / "demo" / "stream.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_port = settings.stream.metrics_port if not port_open("127.0.0.1", settings.stream.metrics_port) else 0
    streamer = _start_streamer(settings, log_path, metrics_port)
    print(f"pid {streamer.pid}, log {log_path}"
          + (f", metrics http://127.0.0.1:{metrics_port}/metrics" if metrics_port else ""))
    try:
        print(f"\n==> publishing {len(fleet.events)} events from {args.sensors} sensors "
              f"({len(fleet.alerting_sensors)} truly anomalous) to {settings.topics.events}: the first "
              f"{WARMUP_DAYS:g} days at once, then {PACE_MS // HOUR_MS} hour of event time at a time, each "
              "once the streamer has committed the last (so every sensor is scored about hourly, as live)")
        publisher = PacedPublisher(settings, fleet.events)
        publisher.start()
        print("\n==> alerts, live (✓ truly anomalous, ✗ not)")
        alerts = _watch_alerts(settings, consumer, start_alerts, publisher, truth, args.timeout, streamer)
        sent = publisher.sent
    finally:
        code = _stop(streamer)
    scores = _scores_since(consumer, settings.topics.scores, start_scores, f"demo-{run_id}-")
    consumer.close()
    _summary(sent, scores, alerts, truth, code)
    return 0 if code == 0 else 1


def _model(args: argparse.Namespace, settings: VigilSettings) -> str:
    from vigil.registry import ModelRegistry  # TensorFlow loads here

    registry = ModelRegistry(settings.models_path)
    current = registry.current_version()
    if current and not args.retrain:
        print(f"using the current model {current} in {registry.root} (--retrain to train a new one)")
        return current
    spec = FleetSpec(sensors=args.train_sensors, days=args.days, features=tuple(settings.features),
                     label_column=settings.label_column, seed=args.seed + 1000, id_prefix="train-")
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "train.parquet"
        generate_fleet(spec).events.to_parquet(events)
        print(f"training on a synthetic fleet of {args.train_sensors} sensors × {args.days:g} days "
              f"({args.epochs} epochs; a few minutes on 2 cores)")
        code = train_cmd.train(train_cmd.parse(["--events", str(events), "--model-dir", str(registry.root),
                                                "--epochs", str(args.epochs)]), settings)
    if code != 0:
        raise VigilError("training failed")
    return registry.current_version()


def _start_group_at(settings: VigilSettings, offsets: dict[int, int]) -> None:
    """The demo's consumer group begins at the topic's current end: older events are not replayed."""
    consumer = make_consumer(settings, group_id=GROUP)
    try:
        commit_offsets(consumer, [TopicPartition(settings.topics.events, p, o) for p, o in offsets.items()],
                       "starting the demo's consumer group")
    finally:
        consumer.close()


def _start_streamer(settings: VigilSettings, log_path: Path, metrics_port: int) -> subprocess.Popen:
    env = {**os.environ, "VIGIL_STREAM__GROUP_ID": GROUP, "VIGIL_STREAM__METRICS_PORT": str(metrics_port),
           "VIGIL_LOG_FORMAT": "json", "VIGIL_MODEL_DIR": str(settings.models_path)}
    with open(log_path, "w") as log:  # the child has its own copy of the descriptor; ours closes here
        return subprocess.Popen([sys.executable, "-m", "vigil.cli.main", "stream"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


class PacedPublisher(threading.Thread):
    """Publishes the fleet as a live one would arrive, compressed: the warm-up days at once (no
    sensor can alert before its window is nearly full), then one ``PACE_MS`` of event time at a
    time, each after the streamer has committed everything before it."""

    def __init__(self, settings: VigilSettings, events):
        super().__init__(daemon=True)
        self.settings, self.events = settings, events
        self.sent, self.error, self.target = 0, None, None
        self.group = make_consumer(settings, group_id=GROUP)  # reads the streamer group's commits

    def run(self) -> None:
        try:
            producer, topic = make_producer(self.settings), self.settings.topics.events
            progress = Progress("published", len(self.events))
            ts = self.events["timestamp"].to_numpy()
            start = int(ts.min()) + int(WARMUP_DAYS * DAY_MS)
            steps = [ts < start] + [(ts >= t) & (ts < t + PACE_MS) for t in range(start, int(ts.max()) + 1, PACE_MS)]
            for step in steps:
                self.sent += produce_frame(producer, topic, self.events[step])
                progress(self.sent)
                self.wait_committed(end_offsets(self.group, topic))
            self.target = end_offsets(self.group, topic)
        except Exception as exc:  # reported by the watcher, which stops the demo
            self.error = exc

    def wait_committed(self, ends: dict[int, int], timeout_s: float = 300.0) -> None:
        tps = [TopicPartition(self.settings.topics.events, p) for p in ends]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            committed = {tp.partition: tp.offset
                         for tp in committed_offsets(self.group, tps, "reading the streamer's progress")}
            if all(committed.get(p, -1) >= o for p, o in ends.items()):
                return
            time.sleep(0.05)
        raise VigilError(f"the streamer did not catch up within {timeout_s:.0f}s; see its log")

    def done(self) -> bool:
        """Everything published and committed."""
        return self.target is not None


def _watch_alerts(settings, consumer, start, publisher: PacedPublisher, truth, timeout_s, streamer) -> list[dict]:
    """Print alerts until everything is published and committed (and a moment more)."""
    consumer.assign([TopicPartition(settings.topics.alerts, p, o) for p, o in start.items()])
    alerts, deadline, done_at = [], time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if streamer.poll() is not None:
            raise VigilError(f"the streamer exited early with {streamer.returncode}; see its log")
        if publisher.error is not None:
            raise VigilError(f"publishing failed: {publisher.error}")
        for msg in consumer.consume(500, 0.5):
            if msg.error() is not None:
                continue
            record = json.loads(msg.value())
            if record["sensor_id"] not in truth.index:
                continue  # another run's sensor
            alerts.append(record)
            mark = "✓" if truth.loc[record["sensor_id"], "alerting"] else "✗"
            print(f"{mark} {describe('alerts', msg)}", flush=True)
        if done_at is None and publisher.done():
            done_at = time.monotonic()
        elif done_at is not None and time.monotonic() - done_at > 2.0:
            break
    else:
        print(f"(stopped waiting after {timeout_s:.0f}s)", file=sys.stderr)
    publisher.group.close()
    return alerts


def _stop(streamer: subprocess.Popen) -> int:
    if streamer.poll() is None:
        streamer.send_signal(signal.SIGTERM)
        try:
            return streamer.wait(120)
        except subprocess.TimeoutExpired:
            streamer.kill()
            return streamer.wait()
    return streamer.returncode


def _scores_since(consumer, topic: str, start: dict[int, int], prefix: str):
    """This run's score records since ``start`` (key begins with ``prefix``): what sensor-days count."""
    import pandas as pd

    end = end_offsets(consumer, topic)
    expected = sum(end[p] - start[p] for p in end)
    rows = [json.loads(msg.value()) for msg in read_from(consumer, topic, start, expected=expected, timeout_s=30)
            if (msg.key() or b"").decode().startswith(prefix)]
    return pd.DataFrame([{k: r.get(k, False) for k in ("sensor_id", "window_end", "warming_up")} for r in rows],
                        columns=["sensor_id", "window_end", "warming_up"])


def _summary(sent: int, scores, alerts: list[dict], truth, streamer_code: int) -> None:
    from vigil.alerts.outcome import alert_outcome, alertable_days, truth_onsets

    onsets = truth_onsets(truth.reset_index())
    outcome = alert_outcome(alerts, alertable_days(scores), onsets=onsets)
    opened, open_now = {}, {}
    for record in sorted(alerts, key=lambda r: r["window_end"]):
        if record["kind"] == "alert":
            opened.setdefault(record["sensor_id"], record)
        open_now[record["sensor_id"]] = record["kind"] == "alert"
    still_open = {s for s, is_open in open_now.items() if is_open}
    anomalous = truth[truth["alerting"]]
    leads = outcome.get("lead_hours", {})
    rows = []
    for sensor_id, row in anomalous.iterrows():
        first = opened.get(sensor_id)
        rows.append((sensor_id, row["kind"], _day(row["onset_ms"]), "yes" if sensor_id in leads else "early only"
                     if first else "no", _day(first["window_end"]) if first else "-",
                     f"{leads[sensor_id]:.1f}" if sensor_id in leads else "-",
                     "yes" if sensor_id in still_open else "no"))
    false = sorted(s for s in opened if not truth.loc[s, "alerting"])
    print("\n==> summary")
    print(f"events published {sent}; windows scored {len(scores)}; alert records {len(alerts)} "
          f"({outcome['alerts']} alerts, {outcome['cleared']} cleared)")
    print(f"truly anomalous sensors alerted after their onset: {len(leads)} of {len(rows)}; "
          f"other sensors alerted at least once: {len(false)} of {len(truth) - len(rows)}")
    print(f"alert precision {_fmt(outcome.get('alert_precision'))} (alerts at or after a true onset / all alerts); "
          f"sensor recall {_fmt(outcome.get('sensor_recall'))}; false alerts per 100 normal sensor-days "
          f"{_fmt(outcome.get('false_alerts_per_100_sensor_days'))} (over {outcome['sensor_days']:g} sensor-days "
          f"past the warm-up); median hours from onset to first alert {_fmt(outcome.get('median_lead_hours'))}")
    print(f"alerts still open at the end: {len(still_open)}, of them truly anomalous: "
          f"{len(still_open & set(anomalous.index))}\n")
    print(table(rows, ("truly anomalous sensor", "anomaly", "onset", "alerted", "first alert (window end)",
                       "hours after onset", "open at end")))
    if false:
        print(f"\nalerted but not anomalous: {', '.join(false)}")
    print("(the same figures for a file: `vigil backtest --events FILE --truth TRUTH`)")
    print(f"\nstreamer stopped with exit code {streamer_code} (SIGTERM: drained and committed)")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:g}"


def _day(ms) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(ms) / 1000))
