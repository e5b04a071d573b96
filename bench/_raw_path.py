"""Older code, measured in the same run as today's: the baselines of ``density.py``, ``memory.py``,
``scoring.py``, ``records.py`` and ``decode.py``.

The raw path is the real code of commit 8bb6346 (the last before per-bin buffers: raw events packed
in time chunks, ``featurize_window`` on the events read back), not a re-implementation; main's
scoring step before the detection heads is the real code of commit 2e09be8 (``MAIN_COMMIT``); the
per-window records step is commit 6759781's ``plan_batch`` (``PER_WINDOW_COMMIT``, records.py); the
orjson decoder is commit 33bb1e1's ``EventDecoder`` (``ORJSON_DECODE_COMMIT``, decode.py).
:class:`RawPath` checks a commit out into a temporary git worktree and starts this file there in
a child process, with the worktree on ``PYTHONPATH`` and as the working directory, on the same
interpreter: ``PYTHONPATH`` comes before the editable install's finder, so ``import vigil`` in the
child is the old package (the child reports where it imported it from, and the parent checks).

The parent sends one request per line on the child's stdin (``{"op": ..., "args": {...}}``) and
reads one JSON reply per line; the child keeps what it loaded between requests. So a benchmark can
alternate between the two paths, and both see the same machine load. The child's progress and
anything else it prints go to stderr. The ops below run in the child only: their imports are the
old code's (``memory.kafka_order_batches`` is this directory's, unchanged by the per-bin commit).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

RAW_COMMIT = "8bb6346"
MAIN_COMMIT = "2e09be8"  # main before the detection heads: the scoring step's speed target is against it
PER_WINDOW_COMMIT = "6759781"  # the last plan_batch that ran the alert policy one window at a time (records.py)
ORJSON_DECODE_COMMIT = "33bb1e1"  # the last EventDecoder on orjson and column checks (decode.py)
REPO = Path(__file__).resolve().parent.parent
DAY_MS = 86_400_000


class RawPath:
    """``with RawPath() as raw: raw.call("load", ...)``: the old code (``commit``, by default the raw
    path's) in a child process."""

    def __init__(self, commit: str = RAW_COMMIT):
        self.commit = commit

    def __enter__(self) -> "RawPath":
        self.tree = Path(tempfile.mkdtemp(prefix="vigil-raw-"))
        try:
            _git("worktree", "add", "--detach", str(self.tree), self.commit)
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(self.tree, ignore_errors=True)
            raise RuntimeError(f"cannot check out commit {self.commit} (a git clone with its "
                               f"history is needed): {exc.stderr.strip()}") from exc
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        self.child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child"], cwd=self.tree,
                                      env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            where = self.call("hello")
            if not Path(where["vigil"]).is_relative_to(self.tree):
                raise RuntimeError(f"the {self.commit} child imported vigil from {where['vigil']}, not {self.tree}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def call(self, op: str, **args) -> dict:
        self.child.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.child.stdin.flush()
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.commit} child exited (status {self.child.wait()}); see stderr")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.commit}, {op}: {reply['error']}")
        return reply["result"]

    def __exit__(self, *_exc) -> None:
        try:
            self.child.stdin.close()
            self.child.wait(timeout=60)
        except (subprocess.TimeoutExpired, OSError):
            self.child.kill()
            self.child.wait()
        finally:
            _git("worktree", "remove", "--force", str(self.tree), check=False)
            shutil.rmtree(self.tree, ignore_errors=True)


def _git(*args: str, check: bool = True) -> None:
    subprocess.run(["git", "-C", str(REPO), *args], check=check, capture_output=True, text=True)


def fleet_fingerprint(frame, features) -> list:
    """What shows that both paths got the same synthetic fleet."""
    return [len(frame), int(frame["timestamp"].sum()), round(float(frame[list(features)].to_numpy().sum()), 3)]


# ---- the child: runs in the worktree, on the old code ------------------------------------------

_loaded: dict[str, tuple] = {}


def op_hello() -> dict:
    import vigil
    return {"vigil": vigil.__file__}


def op_load(name: str, prefix: str, topic: str, sensors: int, days: float, seed: int, interval: float,
            batch: int) -> dict:
    """Apply a synthetic fleet to the raw-event buffer; its memory, events and apply time."""
    from dataclasses import replace

    from memory import kafka_order_batches, memory_usage
    from vigil.buffer import BufferLayout, RollingBuffer
    from vigil.features import FleetStats, WindowSpec
    from vigil.redis_client import connect
    from vigil.settings import VigilSettings
    from vigil.simulate import FleetSpec, generate_fleet

    settings = VigilSettings()
    layout = replace(BufferLayout.from_settings(settings), prefix=prefix)
    client = connect(settings)
    buffer = RollingBuffer(client, layout, topic)
    fleet = generate_fleet(FleetSpec(sensors=sensors, days=days, seed=seed, mean_interval_s=interval)).events
    started = time.perf_counter()
    for part in kafka_order_batches(fleet, settings.features, batch):
        buffer.apply(part)
    apply_s = time.perf_counter() - started
    states = [buffer.state(s) for s in sorted(fleet["sensor_id"].unique())]
    windows = buffer.read(states)
    keys = [layout.meta_key(s.sensor_id) for s in states] + [
        layout.chunk_key(s.sensor_id, c) for s in states for c in range(s.first_chunk, s.open_chunk + 1)]
    spec = WindowSpec(length_ms=layout.window_ms, steps=settings.window.steps, n_features=len(settings.features))
    stats = FleetStats.fit(((w.sensor_id, w.ts_ms, w.values) for w in windows), spec.length_ms, spec.steps)
    _loaded[name] = (buffer, states, spec, stats)
    return {"fleet": fleet_fingerprint(fleet, settings.features), "sensors": len(states), "keys": len(keys),
            "memory_usage_bytes": memory_usage(client, keys), "stored_events": sum(s.n_stored for s in states),
            "window_events": sum(len(w.ts_ms) for w in windows), "apply_s": apply_s,
            "chunks_per_window": layout.chunks_per_window}


def op_time_windows(name: str, batch: int) -> dict:
    """One read of ``batch`` windows (the loaded sensors', cycled) in one pipeline and featurisation
    of each, as the streamer at 8bb6346 did (``streamer/scoring.py``)."""
    from vigil.features import featurize_window

    buffer, states, spec, stats = _loaded[name]
    states = (states * -(-batch // len(states)))[:batch]
    started = time.perf_counter()
    windows = buffer.read(states)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    for w in windows:
        featurize_window(w.ts_ms, w.values, int(w.ts_ms[-1]), spec, stats, stats.baseline_for(w.sensor_id))
    return {"windows": len(windows), "read_s": read_s, "featurize_s": time.perf_counter() - started}


def op_scoring_setup(sensors: int, days: float, seed: int, windows: int, steps: int, max_batch: int,
                     latent_dim: int | None, bottleneck: int | None) -> dict:
    """``bench/scoring.py``'s windows, model and predictor, on the old code (same seeds)."""
    import keras
    import numpy as np

    from vigil.events.frame import event_table
    from vigil.features import FleetStats, WindowSpec, channel_features
    from vigil.model.autoencoder import EncoderLatentAutoencoder
    from vigil.model.config import TrainConfig
    from vigil.model.predictor import BatchPredictor
    from vigil.model.training import make_scorer
    from vigil.simulate import FleetSpec, generate_fleet

    keras.utils.set_random_seed(seed)
    spec = WindowSpec(length_ms=10 * DAY_MS, steps=steps, n_features=2)
    config = TrainConfig(latent_dim=latent_dim, bottleneck=bottleneck).sized(spec.steps, spec.channels)
    fleet = generate_fleet(FleetSpec(sensors=sensors, days=days, seed=seed))
    table = event_table(fleet.events, fleet.spec.features, fleet.spec.label_column)
    stats = FleetStats.fit(((s.sensor_id, s.ts_ms, s.values) for s in table), spec.length_ms, spec.steps)
    candidates = [(s, i) for s in table for i in np.flatnonzero(s.ts_ms >= s.ts_ms[0] + spec.length_ms)]
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(candidates), size=windows, replace=len(candidates) < windows)
    picked = [candidates[i] for i in picks]
    model = EncoderLatentAutoencoder(spec.steps, spec.channels, config.latent_dim, config.bottleneck)
    model.build((None, spec.steps, spec.channels))
    predictor = BatchPredictor(make_scorer(model), max_batch=max_batch)
    predictor.warm_up(spec.steps, spec.channels)
    _loaded["scoring"] = (picked, spec, stats, predictor, channel_features(spec), max_batch)
    ends = [int(s.ts_ms[i]) for s, i in picked]
    return {"fleet": fleet_fingerprint(fleet.events, fleet.spec.features), "ends": [len(ends), sum(ends)],
            "channels": spec.channels}


def op_scoring_run(what: str) -> dict:
    """One timed pass over the windows: ``featurize`` (``featurize_window`` on each window's raw
    events) or ``end_to_end`` (that, then ``BatchPredictor`` and ``explain``, in batches)."""
    import numpy as np

    from vigil.features import featurize_window
    from vigil.model.explain import explain

    picked, spec, stats, predictor, owners, max_batch = _loaded["scoring"]

    def featurize(part):
        return np.stack([featurize_window(s.ts_ms, s.values, int(s.ts_ms[i]), spec, stats,
                                          stats.baseline_for(s.sensor_id)) for s, i in part])

    started = time.perf_counter()
    if what == "featurize":
        featurize(picked)
    else:
        for at in range(0, len(picked), max_batch):
            part = picked[at:at + max_batch]
            scored = predictor(featurize(part))
            explain(scored.contributions, owners, ["feature_1", "feature_2"],
                    np.array([int(s.ts_ms[i]) for s, i in part]), spec.length_ms)
    return {"windows_per_s": len(picked) / (time.perf_counter() - started)}


def op_main_scoring_setup(sensors: int, days: float, seed: int, windows: int, steps: int, max_batch: int) -> dict:
    """Main's ``bench/scoring.py`` end to end at ``MAIN_COMMIT``, that commit's own file (loaded from
    the worktree): the same windows (same seeds, same simulator), its default model and predictor."""
    import argparse
    import importlib.util

    import keras

    sys.path.insert(0, str(Path.cwd() / "bench"))  # its own bench modules, not today's
    spec_ = importlib.util.spec_from_file_location("main_scoring", Path.cwd() / "bench" / "scoring.py")
    main = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(main)
    from vigil.features import WindowSpec, channel_features
    from vigil.model.predictor import BatchPredictor

    keras.utils.set_random_seed(seed)
    spec = WindowSpec(length_ms=10 * DAY_MS, steps=steps, n_features=2)
    args = argparse.Namespace(sensors=sensors, days=days, seed=seed, windows=windows)
    picked, stats, fleet = main.sample_windows(args, spec)
    binned = main.binned_windows(picked, spec)
    _, _, scorer = main.default_scorer(spec)
    predictor = BatchPredictor(scorer, max_batch=max_batch)
    predictor.warm_up(spec.steps, spec.channels)
    ends = [int(s.ts_ms[i]) for s, i in picked]
    _loaded["main_scoring"] = (main, binned, spec, stats, predictor, channel_features(spec), max_batch, ends)
    return {"fleet": fleet, "ends": [len(ends), sum(ends)], "channels": spec.channels}


def op_main_scoring_run() -> dict:
    """One timed pass of main's end to end: featurise from bins, ``BatchPredictor`` and ``explain``,
    in batches (its ``end_to_end``)."""
    import numpy as np

    from vigil.model.explain import explain

    main, binned, spec, stats, predictor, owners, max_batch, ends = _loaded["main_scoring"]
    started = time.perf_counter()
    for at in range(0, len(binned), max_batch):
        part = binned[at:at + max_batch]
        scored = predictor(main.featurize(part, spec, stats, max_batch))
        explain(scored.contributions, owners, ["feature_1", "feature_2"], np.array(ends[at:at + max_batch]),
                spec.length_ms)
    return {"windows_per_s": len(binned) / (time.perf_counter() - started)}


def plan_windows(n: int, seed: int) -> list:
    """``n`` scored windows as ``finish_batch`` returns them, the same in the parent and the child
    (only names both commits have): scores around a threshold of 4, explanations of three kinds,
    every head's value, and a tenth of the sensors with points above already in their meta, so the
    policy opens alerts as well as counting."""
    import numpy as np

    from vigil.alerts import ScoredWindow
    from vigil.events.outputs import Explanation, FeatureShare

    rng = np.random.default_rng(seed)
    heads = ["shift", "spread", "extreme", "profile", "corr", "reference", "fleet", "autoencoder", "joint"]
    end0 = 1_767_225_600_000 + 10 * DAY_MS
    out = []
    for i in range(n):
        end = end0 + int(rng.integers(0, 3_600_000))
        value = rng.gamma(2.0, 1.2, len(heads))
        head = heads[int(np.argmax(value[:-1]))]
        why = Explanation(features=[FeatureShare(feature="feature_1", share=0.7), FeatureShare(feature="feature_2",
                                                                                              share=0.3)],
                          span_start=end - 86_400_000, span_end=end, head=head,
                          text=f"feature_1 moved from {value[0]:.4g} to {value[1]:.4g} (mean) over the last 1d")
        above = {"above_n": "2", "above_since": str(end - 2 * 3_600_000)} if i % 10 == 0 else {}
        out.append(ScoredWindow(sensor_id=f"sensor-{i:05d}", window_start=end - 10 * DAY_MS, window_end=end,
                                n_events=int(rng.integers(200, 2400)), score=float(value.max()),
                                history_ms=10 * DAY_MS, meta={"n": "2400", "pending": "3", **above}, explanation=why,
                                heads={h: round(float(v), 4) for h, v in zip(heads, value)}))
    return out


def time_plan(windows: list, batch: int) -> dict:
    """One timed pass of ``plan_batch`` over the windows, ``batch`` at a time (each batch a fresh
    cycle); what it sent, to show both paths planned the same."""
    from streamer.cycle import Cycle
    from streamer.records import plan_batch
    from vigil.alerts import AlertPolicy
    from vigil.settings import VigilSettings

    s = VigilSettings()
    policy = AlertPolicy(s.alerts, 10 * DAY_MS, 3_600_000)
    partition_of = {w.sensor_id: 0 for w in windows}
    records = alerts = 0
    started = time.perf_counter()
    for at in range(0, len(windows), batch):
        plan = plan_batch(windows[at:at + batch], partition_of, Cycle(), threshold=4.0, version="v1", policy=policy,
                          topics=s.topics, now_ms=1)
        records, alerts = records + len(plan.records), alerts + len(plan.decided)
    return {"windows_per_s": len(windows) / (time.perf_counter() - started), "records": records, "alerts": alerts}


def op_plan_setup(n: int, seed: int) -> dict:
    _loaded["plan"] = (plan_windows(n, seed),)
    return {"windows": n}


def op_plan_run(batch: int) -> dict:
    return time_plan(*_loaded["plan"], batch)


def decode_values(n: int, features: int, sensors: int, seed: int) -> list[bytes]:
    """Kafka message values as gateways send them: ``features`` features (``feature_1``...), one
    label in ten (0 or 1), every value valid."""
    import numpy as np
    import orjson

    rng = np.random.default_rng(seed)
    values = (rng.normal(size=(n, features)) * 10 + 50).tolist()
    out = []
    for i in range(n):
        event = {"sensor_id": f"sensor-{i % sensors:05d}", "timestamp": 1767225600000 + i * 1000,
                 **{f"feature_{j + 1}": values[i][j] for j in range(features)}}
        if i % 10 == 0:
            event["10_days_alert_label"] = int(rng.integers(2))
        out.append(orjson.dumps(event))
    return out


def time_decode(decoder, raws: list[bytes], batch: int) -> dict:
    """One pass of ``decode_many`` over ``raws`` in consume calls of ``batch``: µs an event, and a
    fingerprint of what it decoded (taken after the clock stops; both paths must agree)."""
    started = time.perf_counter()
    got = [decoder.decode_many(raws[at:at + batch]) for at in range(0, len(raws), batch)]
    elapsed = time.perf_counter() - started
    decoded = [sum(len(g.rows) for g in got), sum(len(i) for g in got for i in g.sensor_ids),
               sum(sum(g.timestamps) for g in got),
               round(sum(sum(map(sum, g.values)) + sum(label or 0 for label in g.labels) for g in got), 6)]
    return {"us_per_event": elapsed / len(raws) * 1e6, "decoded": decoded}


def op_decode_setup(n: int, features: int, sensors: int, seed: int) -> dict:
    from vigil.events.decode import EventDecoder
    from vigil.events.schema import EventSchema

    schema = EventSchema([f"feature_{j + 1}" for j in range(features)])
    _loaded["decode"] = (EventDecoder(schema), decode_values(n, features, sensors, seed))
    return {"events": n}


def op_decode_run(batch: int) -> dict:
    return time_decode(*_loaded["decode"], batch)


def _child() -> None:
    # Replies go to the original stdout; everything else printed (TensorFlow included) to stderr.
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    ops = {name[3:]: f for name, f in globals().items() if name.startswith("op_")}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"result": ops[request["op"]](**request["args"])}
        except Exception as exc:  # reported to the parent, which raises it
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    _child()
