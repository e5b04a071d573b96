"""End-to-end latency, event produced → score published, with the streamer scoring live traffic.

A small model is trained first on a synthetic fleet (``fit_and_register`` into a temporary
registry; its training time is printed) unless ``--model-dir`` names an existing registry. The
real ``Streamer`` (scoring on, ``max_wait`` 250 ms, ``max_batch_windows`` 512: the defaults) runs
in a thread on fresh topics and a fresh Redis prefix. A load process produces live events for a
fleet of ``--sensors`` sensors (round-robin) at ``--rate`` events/s, each stamped with the load's
event clock, which runs ``--speed`` times as fast as the wall clock (default 120: an hour of event
time every 30 s, so the default cadence, a one-hour bin, has every sensor scored once per 30 s);
the first ``--warmup`` seconds fill every sensor's buffer past ``min_events`` (10) and are not
measured, then ``--duration`` seconds are. ``--score-every`` sets ``stream.score_every`` (0: every
new event, coalesced per batch); ``--no-overlap`` runs each batch's model call in the loop's thread
(``stream.overlap`` off), to measure what the second thread gives.

Latency of a score = its Kafka CreateTime (set when the streamer hands the record to its producer,
``msg.timestamp()``) − the produce time of the event that completed its scoring point. With a
cadence that is the sensor's first event of the next span; the bench takes the wall-clock time the
load's clock reached that span (at most one of the sensor's event intervals earlier: sensors / rate
seconds, 20 ms at the defaults), so the figure errs high. With ``--score-every 0`` it is the
newest event in the window (the window_end). Scores whose completing time falls in the measured
interval count. ``received_*`` uses the wall clock when this process received the score instead
(adds the publish acknowledgement and our consumer's fetch). CPU: this process's user + system
seconds (streamer and score reader; the load runs elsewhere) and Redis's, per million events, from
the load's start to the end of the drain.

The rate defaults to half of ``--max-ingest`` (default 50,000 events/s, the ingest target; pass
bench/ingest.py's measured ``events_per_s``). Streamer and score reader share this process; the
load runs in a process of its own (bench/_load.py).

Baseline in the same invocation (unless ``--no-baseline``): commit ``--baseline-commit``
(2e09be8, main before scoring points: every new event scored, coalesced per batch; 8bb6346 is the
raw-event buffer before per-bin accumulators), measured first under the same load by that
commit's own copy of this file, run from a temporary git worktree of it in a subprocess (its
``vigil``, ``streamer`` and ``trainer`` on ``PYTHONPATH``), then the current code here, one after
the other. A baseline commit whose copy has ``--score-every`` gets this run's; an older one scores
at every new event. Its events carry wall-clock times (that file has no event clock). Each trains its own
quick model with the same recipe and seed; ``--model-dir`` applies to the current code's run only.

The last line of stdout is one JSON object: the current code's figures at the top level
(``p99_ratio_to_target`` = p99_ms / 500, target < 1; ``windows_scored_per_s`` = scores published
while the load ran / its seconds, warm-up included: what the streamer sustained, without the
drain's catch-up), the baseline's under ``baseline``, and ``new_vs_baseline`` = current / baseline for the
percentiles, the lag, windows scored per second and the achieved produce rate.

    .venv/bin/python bench/latency.py                    # 25,000 events/s, 500 sensors, 30 s, main too
    .venv/bin/python bench/latency.py --quick            # 10 s measured, smaller training run
    .venv/bin/python bench/latency.py --sensors 5000 --rate 50000   # thousands of sensors per replica
    .venv/bin/python bench/latency.py --score-every 0 --sensors 5000 --rate 50000  # every event scored
    .venv/bin/python bench/latency.py --no-baseline --max-ingest 84000 --model-dir var/models
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from confluent_kafka import TopicPartition  # noqa: E402

from _load import Load  # noqa: E402
from _common import (fill_unset, bench_settings, create_topics, delete_groups, delete_prefix, delete_topics,  # noqa: E402
                     fmt, log, print_table, quiet_logs, redis_client, redis_cpu_s, run_id)
from streamer.app import Streamer  # noqa: E402
from trainer.fit import fit_and_register  # noqa: E402
from vigil.events.frame import event_table  # noqa: E402
from vigil.buffer import Cadence  # noqa: E402
from vigil.durations import format_span, parse_span  # noqa: E402
from vigil.features import WindowSpec  # noqa: E402
from vigil.kafka.clients import make_consumer  # noqa: E402
from vigil.model.config import TrainConfig  # noqa: E402
from vigil.registry import ModelRegistry  # noqa: E402
from vigil.settings import StreamSettings  # noqa: E402
from vigil.simulate import FleetSpec, generate_fleet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "2e09be8"  # main before scoring points (issue 25); 8bb6346: the raw-event buffer
TARGET_P99_MS = 500.0


def train_quick_model(root: str, args: argparse.Namespace, settings) -> tuple[str, float]:
    fleet = generate_fleet(FleetSpec(sensors=args.train_sensors, days=10, seed=args.seed))
    table = event_table(fleet.events, settings.features, settings.label_column)
    spec = WindowSpec(int(settings.window.length.total_seconds() * 1000), settings.window.steps, len(table.features))
    config = TrainConfig(epochs=args.epochs, dense_epochs=5, seed=args.seed)
    every = max(1, math.ceil(table.n_events / args.train_windows))
    result = fit_and_register(table, spec, config, ModelRegistry(root), every=every)
    return result.version, result.seconds


class ScoreReader:
    """Reads the scores topic: (sensor_id, window_end, CreateTime, received) per score."""

    def __init__(self, settings):
        self.consumer = make_consumer(settings, f"{settings.stream.group_id}-reader")
        self.consumer.subscribe([settings.topics.scores])
        self.rows: list[tuple[str, int, int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for msg in self.consumer.consume(1000, 0.2):
                if msg.error() is None:
                    received = time.time() * 1000
                    record = orjson.loads(msg.value())
                    self.rows.append((record["sensor_id"], record["window_end"], msg.timestamp()[1], received))
        self.consumer.close()


def percentiles(values) -> dict:
    if not len(values):
        return {k: None for k in ("p50", "p95", "p99", "max", "mean")}
    v = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    return {"p50": p50, "p95": p95, "p99": p99, "max": float(v.max()), "mean": float(v.mean())}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10 s measured, 3 s warm-up, 1 training epoch (unless given)")
    p.add_argument("--rate", type=float, help="events/s to produce (default: half of --max-ingest)")
    p.add_argument("--max-ingest", type=float, default=50_000.0,
                   help="the maximum ingest rate (events/s) the default --rate halves (default 50,000)")
    p.add_argument("--duration", type=float, help="measured seconds (default 30; --quick 10)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds of load first (default 5; --quick 3)")
    p.add_argument("--sensors", type=int, default=500, help="live fleet size (default 500)")
    p.add_argument("--max-wait-ms", type=int, default=250, help="stream.max_wait (default 250)")
    p.add_argument("--max-batch", type=int, default=512, help="stream.max_batch_windows (default 512)")
    p.add_argument("--model-dir", help="use this model registry's current version instead of training one")
    p.add_argument("--train-sensors", type=int, default=60, help="synthetic fleet to train on (default 60)")
    p.add_argument("--train-windows", type=int, default=2000, help="about this many training windows")
    p.add_argument("--epochs", type=int, help="encoder epochs of the quick model (default 2; --quick 1)")
    p.add_argument("--no-precompile", action="store_true",
                   help="do not trace every batch bucket before the load (first batches then pay it)")
    p.add_argument("--poll-events", type=int, default=5000, help="stream.poll_events (default 5000, the setting's)")
    p.add_argument("--score-every", type=parse_span, default=StreamSettings().score_every,
                   help=f"stream.score_every (default {format_span(StreamSettings().score_every)}; 0: every event)")
    p.add_argument("--replicas", type=int, default=1,
                   help="streamer processes in the consumer group (default 1; the others run `vigil stream`)")
    p.add_argument("--speed", type=float, default=120.0,
                   help="event-time seconds per wall-clock second of the load (default 120)")
    p.add_argument("--drain-timeout", type=float, default=180.0, help="most seconds to wait for a backlog (180)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overlap-min-windows", type=int, default=StreamSettings().overlap_min_windows,
                   help="stream.overlap_min_windows (the current code only)")
    p.add_argument("--no-overlap", action="store_true",
                   help="stream.overlap off: each batch's model call in the loop's thread (the current code only)")
    p.add_argument("--no-baseline", action="store_true", help="measure the current code only (no baseline run)")
    p.add_argument("--baseline-commit", default=BASELINE_COMMIT,
                   help=f"the commit measured first (default {BASELINE_COMMIT})")
    args = p.parse_args(argv)
    fill_unset(args, {"duration": 10.0, "warmup": 3.0, "epochs": 1}, {"duration": 30.0, "warmup": 5.0, "epochs": 2})
    if args.rate is None:
        args.rate = args.max_ingest / 2
    return args


def published(streamer) -> float:
    return streamer.metrics.registry.get_sample_value("vigil_scores_published_total") or 0


def wait_ready(streamer, args, partitions: int) -> None:
    """Until the streamer has a model and its share of the partitions (the other replicas joined);
    then trace every batch bucket (steady state)."""
    deadline = time.monotonic() + 180
    share = math.ceil(partitions / args.replicas)

    def ready() -> bool:
        assigned = streamer.status().assigned
        return streamer.models.active is not None and 0 < len(assigned) <= share

    while not ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    active = streamer.models.active
    if not ready():
        raise RuntimeError(f"the streamer had no model or not its share of {partitions} partitions after 180 s")
    if not args.no_precompile:
        spec, bucket = active.loaded.spec, active.predict.min_bucket
        while bucket <= args.max_batch:
            active.predict(np.zeros((bucket, spec.steps, spec.channels), np.float32))
            bucket *= 2
    log(f"streamer ready with model {active.version}")


def run_load(streamer, reader: ScoreReader, load: Load, args, group: "GroupProgress | None" = None) -> dict:
    """Run the load, then wait for the drain. With other replicas (``group``), progress is the
    group's committed offsets: a replica commits once its events are applied and scored."""
    if group is None:
        consumed = lambda: streamer.metrics.registry.get_sample_value("vigil_events_consumed_total") or 0  # noqa: E731
        scored = lambda: published(streamer)  # noqa: E731
    else:
        consumed, scored = group.committed, lambda: len(reader.rows)  # noqa: E731
    load.start()
    max_lag, next_log = 0, time.monotonic() + 5
    while load.is_alive():
        max_lag = max(max_lag, load.produced - consumed())
        if time.monotonic() >= next_log:
            next_log += 5
            log(f"  produced {load.produced:,}, consumed {consumed():,.0f}, scores read {len(reader.rows):,}")
        time.sleep(0.1)
    lag_at_end, scores_at_end = load.produced - consumed(), scored()
    log(f"load done ({load.produced:,} events, lag {lag_at_end:,.0f}); draining")
    started = time.monotonic()
    while time.monotonic() - started < args.drain_timeout:
        status = streamer.status()
        if (consumed() >= load.produced and not status.pending_offsets and not status.ready
                and len(reader.rows) >= scored()):
            break
        time.sleep(0.1)
    return {"max_lag_events": max_lag, "lag_at_load_end": lag_at_end, "drain_s": round(time.monotonic() - started, 1),
            "drained": consumed() >= load.produced, "scores_published_during_load": scores_at_end}


class GroupProgress:
    """Events the streamers' consumer group has committed, over every partition."""

    def __init__(self, settings):
        self.settings = settings
        self.consumer = make_consumer(settings, settings.stream.group_id)
        self.partitions = [TopicPartition(settings.topics.events, p) for p in range(settings.topics.events_partitions)]

    def committed(self) -> int:
        tps = self.consumer.committed(self.partitions, timeout=10)
        return sum(tp.offset for tp in tps if tp.offset >= 0)

    def close(self) -> None:
        self.consumer.close()


def forwarded_args(args: argparse.Namespace) -> list[str]:
    """This run's load and streamer options, resolved (``--quick`` and the rate filled in), for the
    baseline's copy of this file: both runs then see the same load, seed and streamer settings."""
    out = ["--sensors", str(args.sensors), "--rate", repr(args.rate), "--duration", repr(args.duration),
           "--warmup", repr(args.warmup), "--epochs", str(args.epochs), "--max-wait-ms", str(args.max_wait_ms),
           "--max-batch", str(args.max_batch), "--poll-events", str(args.poll_events),
           "--train-sensors", str(args.train_sensors), "--train-windows", str(args.train_windows),
           "--drain-timeout", repr(args.drain_timeout), "--seed", str(args.seed), "--no-baseline"]
    return out + (["--no-precompile"] if args.no_precompile else [])


def measure_baseline(args: argparse.Namespace) -> dict:
    """The baseline commit under this run's load: ``--baseline-commit``'s own bench/latency.py in a
    subprocess, from a temporary git worktree of that commit (removed afterwards). Its stdout table
    is echoed; returns its last stdout line (its JSON report) plus the load average at its end."""
    worktree = tempfile.mkdtemp(prefix="vigil-bench-latency-base-")
    git = ["git", "-C", str(REPO)]
    added = subprocess.run([*git, "worktree", "add", "--detach", worktree, args.baseline_commit],
                           capture_output=True, text=True)
    if added.returncode != 0:
        shutil.rmtree(worktree, ignore_errors=True)
        raise RuntimeError(f"cannot check out {args.baseline_commit}: {added.stderr.strip()} "
                           "(--no-baseline measures the current code alone)")
    try:
        # The venv's editable install maps vigil/streamer/trainer to this checkout, but only as a
        # fallback after sys.path: PYTHONPATH puts the worktree's packages first. Checked, so a
        # baseline can never silently measure the current code.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [worktree, os.environ.get("PYTHONPATH")]))}
        where = subprocess.run([sys.executable, "-c", "import vigil, streamer, trainer; "
                                "print(vigil.__file__, streamer.__file__, trainer.__file__)"],
                               cwd=worktree, env=env, check=True, capture_output=True, text=True).stdout.split()
        if not all(Path(f).resolve().is_relative_to(Path(worktree).resolve()) for f in where):
            raise RuntimeError(f"the baseline would import {where}, not the worktree at {worktree}")
        command = [sys.executable, "bench/latency.py", *forwarded_args(args)]
        # A baseline that has a scoring cadence (after 2e09be8) runs at this run's; an older one
        # scores at every new event, as it did.
        if "--score-every" in (Path(worktree) / "bench" / "latency.py").read_text():
            command += ["--score-every", format_span(args.score_every)]
        log(f"baseline ({args.baseline_commit}) first: {' '.join(command[1:])} in {worktree}")
        limit = args.warmup + args.duration + args.drain_timeout + 600  # + training, start-up and clean-up
        # stderr (progress, logs) is echoed, and its progress lines mark the load for the CPU
        # figures (that file has none); stdout (table, then the JSON line) is captured.
        child = subprocess.Popen(command, cwd=worktree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        client, marks = redis_client(bench_settings("latency", run_id())), {}
        echo = threading.Thread(target=watch_progress, args=(child, client, marks), daemon=True)
        echo.start()
        timer = threading.Timer(limit, child.kill)  # communicate() would read stderr too, from under the echo
        timer.start()
        try:
            out = child.stdout.read()
            child.wait()
        finally:
            timer.cancel()
            child.kill()
        echo.join(10)
        if child.returncode != 0:
            raise RuntimeError(f"the baseline run exited with {child.returncode}")
        table, _, last = out.rstrip().rpartition("\n")
        print(f"\n[baseline, {args.baseline_commit}]{table}")
        report = {**json.loads(last), "load_avg_1m": round(os.getloadavg()[0], 2)}
        if "start" in marks and "end" in marks:
            # its achieved rate over the whole load (it reports the measured part's)
            million = report["events_per_s"] * (report["warmup_s"] + report["measured_s"]) / 1e6 or 1
            for key, at in (("cpu_s_per_million_events", 0), ("redis_cpu_s_per_million_events", 1)):
                report[key] = round((marks["end"][at] - marks["start"][at]) / million, 2)
        return report
    finally:
        removed = subprocess.run([*git, "worktree", "remove", "--force", worktree], capture_output=True, text=True)
        if removed.returncode != 0:  # still never leave a stray worktree registered
            shutil.rmtree(worktree, ignore_errors=True)
            subprocess.run([*git, "worktree", "prune"], capture_output=True)


def watch_progress(child: subprocess.Popen, client, marks: dict) -> None:
    """Echo the child's stderr; at its "producing" line and at its "cleaned up" line, note its
    own CPU seconds (its streamer and reader: the load is a process of its own) and Redis's. The
    second mark comes after its streamer stopped and its topics were deleted: a little more than
    this run's, which ends with the drain."""
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> tuple[float, float]:
        fields = Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / ticks, redis_cpu_s(client)

    for line in child.stderr:
        sys.stderr.write(line)
        # (after its time stamp; other output may share the line)
        if "] producing " in line and "start" not in marks:
            marks["start"] = cpu()
        elif "] cleaned up" in line and "end" not in marks:
            marks["end"] = cpu()


def completing_wall_ms(rows: list, cadence: Cadence, load: Load) -> list[float]:
    """Per score: the wall-clock time the event completing its point was produced, at the latest
    (see the module's docstring)."""
    if not rows:
        return []
    ends = np.array([r[1] for r in rows], dtype=np.int64)
    if cadence.enabled:
        phases = np.array([cadence.phase(r[0]) for r in rows], dtype=np.int64)
        ends = phases + ((ends - phases) // cadence.every_ms + 1) * cadence.every_ms  # the next span's start
    return [float(load.wall_ms(e)) for e in ends]


def process_cpu_s(others: list | None = None) -> float:
    """This process's CPU seconds, and the other replicas'."""
    t = os.times()
    return t.user + t.system + sum(child_cpu_s(p.pid) for p in others or [])


def child_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_replica(settings) -> subprocess.Popen:
    """Another streamer replica: `vigil stream` with this run's settings, in the same group."""
    s = settings.stream
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(VIGIL_KAFKA__BOOTSTRAP_SERVERS=settings.kafka.bootstrap_servers,
               VIGIL_REDIS__URL=settings.redis.url.get_secret_value(), VIGIL_REDIS__KEY_PREFIX=settings.redis.key_prefix,
               VIGIL_TOPICS__EVENTS=settings.topics.events, VIGIL_TOPICS__SCORES=settings.topics.scores,
               VIGIL_TOPICS__ALERTS=settings.topics.alerts, VIGIL_TOPICS__DLQ=settings.topics.dlq,
               VIGIL_MODEL_DIR=str(settings.model_dir), VIGIL_STREAM__GROUP_ID=s.group_id,
               VIGIL_STREAM__METRICS_PORT="0", VIGIL_STREAM__MAX_WAIT=f"{s.max_wait.total_seconds()}s",
               VIGIL_STREAM__MAX_BATCH_WINDOWS=str(s.max_batch_windows), VIGIL_STREAM__POLL_EVENTS=str(s.poll_events),
               VIGIL_STREAM__SCORE_EVERY=format_span(s.score_every), VIGIL_STREAM__OVERLAP=str(s.overlap).lower(),
               VIGIL_STREAM__OVERLAP_MIN_WINDOWS=str(s.overlap_min_windows),
               VIGIL_LOG_LEVEL="warning")
    return subprocess.Popen([sys.executable, "-m", "vigil.cli.main", "stream"], env=env, cwd=REPO)


def ratio(new, old) -> float | None:
    return None if new is None or not old else round(new / old, 3)


def scoring_rate(report: dict) -> float | None:
    """Windows scored per second while the load ran (either path's JSON has the fields). Scores
    of the measured interval would also count those published while draining a backlog."""
    seconds = report["warmup_s"] + report["measured_s"]
    return round(report["scores_published_during_load"] / seconds, 1) if seconds else None


def compare(new: dict, raw: dict) -> dict:
    """The current code's figures over the baseline's (below 1: lower latency, lag or rate)."""
    keys = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "max_lag_events", "windows_scored_per_s", "events_per_s",
            "cpu_s_per_million_events", "redis_cpu_s_per_million_events")
    return {k: ratio(new.get(k), raw.get(k)) for k in keys}


def measure(args: argparse.Namespace) -> dict:
    """One run of the current code under the load: prints its table, returns its figures."""
    rid = run_id()
    tmp = tempfile.TemporaryDirectory(prefix="vigil-bench-latency-")
    settings = bench_settings("latency", rid, max_wait=timedelta(milliseconds=args.max_wait_ms),
                              max_batch_windows=args.max_batch, poll_events=args.poll_events,
                              score_every=args.score_every, overlap=not args.no_overlap,
                              overlap_min_windows=args.overlap_min_windows)
    cadence = Cadence.from_settings(settings)
    settings = settings.model_copy(update={"model_dir": args.model_dir or tmp.name})
    client, created, train_s, streamer, reader, others, group = redis_client(settings), [], None, None, None, [], None
    try:
        if args.model_dir is None:
            log(f"run {rid}: training a quick model ({args.train_sensors} sensors, {args.epochs} epoch(s))")
            # In a child process: training asks TensorFlow for deterministic kernels, for good, and
            # a process that did keeps its scorers off XLA (vigil.model.training.xla_scoring); the
            # streamer here must score as `vigil stream` does.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                version, train_s = pool.submit(train_quick_model, tmp.name, args, settings).result()
            log(f"trained {version} in {train_s:.1f} s")
        created = create_topics(settings, settings.topics.partitions())
        others = [start_replica(settings) for _ in range(args.replicas - 1)]
        streamer, reader = Streamer(settings), ScoreReader(settings)
        threads = [threading.Thread(target=t, daemon=True) for t in (streamer.run, reader.run)]
        for thread in threads:
            thread.start()
        wait_ready(streamer, args, settings.topics.events_partitions)
        # The event clock starts two hours back, so it stays behind the wall clock for a minute of load.
        load = Load(settings.kafka.client_config(), settings.topics.events, args.sensors, args.rate,
                    args.warmup, args.duration, args.seed, speed=args.speed,
                    event_start_ms=time.time() * 1000 - 2 * 3_600_000)
        cpu0, redis_cpu0 = process_cpu_s(others), redis_cpu_s(client)
        log(f"producing {args.rate:,.0f} events/s over {args.sensors} sensors for {args.warmup:g} s warm-up "
            f"+ {args.duration:g} s measured")
        group = GroupProgress(settings) if others else None
        run = run_load(streamer, reader, load, args, group)
        cpu_s, redis_s = process_cpu_s(others) - cpu0, redis_cpu_s(client) - redis_cpu0
        sample = streamer.metrics.registry.get_sample_value
        batches = sample("vigil_batch_windows_count") or 0
        run["windows_per_batch"] = round(sample("vigil_batch_windows_sum") / batches, 1) if batches else None
    finally:
        for other in others:
            other.send_signal(signal.SIGTERM)
        for other in others:
            other.wait(60)
        if group is not None:
            group.close()
        if streamer is not None:  # the streamer first (it publishes until it stops), then the reader
            streamer.stop()
            threads[0].join(60)
            deadline = time.monotonic() + 10
            while len(reader.rows) < published(streamer) and time.monotonic() < deadline:
                time.sleep(0.1)
            reader.stop.set()
            threads[1].join(10)
            delete_groups(settings, [settings.stream.group_id, f"{settings.stream.group_id}-reader"])
        delete_topics(settings, created)
        removed = delete_prefix(client, settings.redis.key_prefix)
        tmp.cleanup()
        log(f"cleaned up: {len(created)} topics, {removed} Redis keys")
    completed = completing_wall_ms(reader.rows, cadence, load)
    measured = [(at, r) for at, r in zip(completed, reader.rows) if load.start_ms <= at <= load.end_ms]
    created_ms = percentiles([r[2] - at for at, r in measured])
    received_ms = percentiles([r[3] - at for at, r in measured])
    seconds, events = (load.end_ms - load.start_ms) / 1000, load.produced - load.warm_count
    rate, p99 = events / seconds, created_ms["p99"]
    print_table(f"Produce -> score latency: {args.sensors} sensors, {rate:,.0f} events/s achieved "
                f"(target {args.rate:,.0f}), {seconds:.1f} s measured, max_wait {args.max_wait_ms} ms, "
                f"{len(measured):,} scores, score_every {format_span(args.score_every)}",
                ["clock", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"],
                [[name, *(fmt(d[k], ",.0f") for k in ("p50", "p95", "p99", "max", "mean"))]
                 for name, d in (("score CreateTime", created_ms), ("received here", received_ms))])
    print(f"max lag {run['max_lag_events']:,.0f} events, {run['lag_at_load_end']:,.0f} when the load stopped, "
          f"drained in {run['drain_s']:.1f} s{'' if run['drained'] else ' (NOT drained: percentiles are lower bounds)'}"
          f"; target p99 <= {TARGET_P99_MS:,.0f} ms: {'met' if p99 is not None and p99 <= TARGET_P99_MS else 'NOT met'}")
    million = load.produced / 1e6
    print(f"CPU per million events: {cpu_s / million:,.1f} s in this process (streamer, reader), "
          f"{redis_s / million:,.1f} s in Redis")
    r = lambda v: None if v is None else round(v, 1)  # noqa: E731
    report = {
        "p50_ms": r(created_ms["p50"]), "p99_ms": r(p99),
        "p99_ratio_to_target": None if p99 is None else round(p99 / TARGET_P99_MS, 4),
        "score_every": format_span(args.score_every), "speed": args.speed, "overlap": not args.no_overlap,
        "overlap_min_windows": args.overlap_min_windows,
        "cpu_s_per_million_events": round(cpu_s / million, 2), "redis_cpu_s_per_million_events": round(redis_s / million, 2),
        "events_per_s": round(rate), "target_rate": args.rate, "scores": len(measured),
        "p95_ms": r(created_ms["p95"]), "max_ms": r(created_ms["max"]), "mean_ms": r(created_ms["mean"]),
        "received_p50_ms": r(received_ms["p50"]), "received_p99_ms": r(received_ms["p99"]),
        "events_per_score": round(events / len(measured), 2) if measured else None,
        **run,
        "scores_published_total": len(reader.rows), "sensors": args.sensors, "replicas": args.replicas, "measured_s": round(seconds, 2),
        "warmup_s": args.warmup, "max_wait_ms": args.max_wait_ms, "max_batch_windows": args.max_batch,
        "poll_events": args.poll_events, "produce_failures": load.failures,
        "model_trained_s": None if train_s is None else round(train_s, 1), "precompiled_buckets": not args.no_precompile,
        "load_avg_1m": round(os.getloadavg()[0], 2),  # 2 shared cores: what else ran shows here
    }
    report["windows_scored_per_s"] = scoring_rate(report)
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_logs()
    raw = None
    if not args.no_baseline:
        raw = measure_baseline(args)
        raw["windows_scored_per_s"] = scoring_rate(raw)  # that commit's file does not report it
        raw["commit"] = args.baseline_commit
    report = measure(args)
    if raw is not None:
        shown = (("p50", "p50_ms", " ms"), ("p99", "p99_ms", " ms"), ("windows scored", "windows_scored_per_s", "/s"),
                 ("max lag", "max_lag_events", " events"))
        print(f"\nbaseline ({args.baseline_commit}) -> current: " + ", ".join(
            f"{name} {fmt(raw[key], ',.0f')} -> {fmt(report[key], ',.0f')}{unit}" for name, key, unit in shown))
        report.update(baseline=raw, new_vs_baseline=compare(report, raw))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
