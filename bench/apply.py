"""The buffer's apply script alone: Redis time per event, today's script against an older commit's.

``RollingBuffer.apply`` writes batches of S sensors x K events (a minute apart, two features) to
Redis, once with today's ``APPLY`` script and once with the script of ``--baseline`` (by default
460d1a4, the last before the per-event work was trimmed), each on its own key prefix, the rounds
alternating so both see the same machine. Redis's own time is read from ``INFO commandstats``
(``EVALSHA`` microseconds) around each apply; the wall time includes the Python side (packing,
the pipeline, the replies). After the rounds both prefixes must hold byte-identical bins strings
and meta hashes, or the run fails: the two scripts are the same arithmetic.

The baseline's script is read with ``git show`` from this clone's history, so its call protocol
must be today's (checked). The last line of stdout is one JSON object; ``ratio`` is the baseline's
Redis time per event over today's, per K.

    .venv/bin/python bench/apply.py                       # 1,600 sensors, K = 1, 9 and 40
    .venv/bin/python bench/apply.py --per-sensor 9 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import delete_prefix, fmt, log, print_table, redis_client, run_id
from vigil.buffer import meta as sensor_meta, scripts
from vigil.buffer.batch import EventBatch
from vigil.buffer.layout import BufferLayout
from vigil.buffer.rolling import RollingBuffer
from vigil.events.schema import SensorEvent
from vigil.settings import VigilSettings

BASELINE = "460d1a4"
REPO = Path(__file__).resolve().parent.parent
DAY_MS, T0 = 86_400_000, 1_700_000_000_000


def baseline_script(commit: str) -> str:
    """``APPLY`` as ``commit`` had it; its arguments must be laid out as today's."""
    try:
        source = subprocess.run(["git", "show", f"{commit}:vigil/buffer/scripts.py"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"cannot read the apply script of commit {commit} (a git clone with its history is "
                         f"needed): {exc.stderr.strip()}") from None
    old: dict = {}
    exec(compile(source, f"{commit}:vigil/buffer/scripts.py", "exec"), old)
    if (old["SHARED_ARGS"], old["PER_SENSOR_ARGS"]) != (scripts.SHARED_ARGS, scripts.PER_SENSOR_ARGS):
        raise SystemExit(f"commit {commit}'s apply script takes other arguments: it cannot be the baseline")
    return old["APPLY"]


def batches(sensors: int, per_sensor: int, rounds: int, seed: int) -> list[EventBatch]:
    """``rounds`` batches; in each, every sensor's next ``per_sensor`` events, interleaved."""
    rng = np.random.default_rng(seed)
    out, offset = [], 0
    for r in range(rounds):
        batch = EventBatch(2)
        values = rng.normal(size=(per_sensor, sensors, 2))
        for k in range(per_sensor):
            minute = r * per_sensor + k
            for s in range(sensors):
                batch.add(SensorEvent(f"s{s}", T0 + minute * 60_000 + s, tuple(values[k, s].tolist()), None),
                          s % 6, offset)
                offset += 1
        out.append(batch)
    return out


def evalsha_usec(client) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


def timed_apply(client, buffer: RollingBuffer, batch: EventBatch) -> tuple[float, float]:
    """(Redis seconds, wall seconds) of one apply."""
    before, t0 = evalsha_usec(client), time.perf_counter()
    buffer.apply(batch)
    wall = time.perf_counter() - t0
    return (evalsha_usec(client) - before) / 1e6, wall


def arithmetic_meta(client, buffer: RollingBuffer, sensor: str) -> dict:
    """The sensor's meta hash without ``ttl_at``: when the keys' TTL was last set is Redis's clock,
    not the arithmetic (and older scripts lack it)."""
    clock = sensor_meta.TTL_AT.encode()
    return {k: v for k, v in client.hgetall(buffer.layout.meta_key(sensor)).items() if k != clock}


def same_state(client, ours: RollingBuffer, theirs: RollingBuffer, sensors: int) -> bool:
    for s in range(sensors):
        sensor = f"s{s}"
        if client.get(ours.layout.bins_key(sensor)) != client.get(theirs.layout.bins_key(sensor)):
            return False
        if arithmetic_meta(client, ours, sensor) != arithmetic_meta(client, theirs, sensor):
            return False
    return True


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sensors", type=int, default=1600, help="sensors per batch (default 1600, about what one "
                                                             "apply holds at 5,000 sensors in bench/ingest.py)")
    p.add_argument("--per-sensor", default="1,9,40", help="events per sensor per batch, comma-separated "
                                                          "(default 1,9,40)")
    p.add_argument("--rounds", type=int, default=6, help="timed batches per K and script (default 6)")
    p.add_argument("--baseline", default=BASELINE, help=f"the commit whose script is the baseline (default {BASELINE})")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        args.per_sensor = [int(k) for k in args.per_sensor.split(",")]
    except ValueError:
        p.error(f"--per-sensor: comma-separated whole numbers, got {args.per_sensor!r}")
    if args.sensors < 1 or args.rounds < 1 or min(args.per_sensor) < 1:
        p.error("--sensors, --rounds and every --per-sensor must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = VigilSettings()
    client = redis_client(settings)
    old_script = client.register_script(baseline_script(args.baseline))
    rid = run_id()
    rows, report = [], {"sensors": args.sensors, "rounds": args.rounds, "baseline": args.baseline, "by_k": {}}
    for k in args.per_sensor:
        ours = RollingBuffer(client, BufferLayout(f"bench-apply-{rid}-new", 2, 10 * DAY_MS), "events")
        theirs = RollingBuffer(client, BufferLayout(f"bench-apply-{rid}-old", 2, 10 * DAY_MS), "events")
        theirs._apply = old_script
        try:
            work = batches(args.sensors, k, args.rounds + 1, args.seed)
            log(f"K={k}: {args.rounds} rounds of {len(work[0]):,} events, alternating")
            for buffer in (ours, theirs):  # the first round creates the keys: not timed
                buffer.apply(work[0])
            totals = {"new": np.zeros(2), "old": np.zeros(2)}
            for batch in work[1:]:
                totals["new"] += timed_apply(client, ours, batch)
                totals["old"] += timed_apply(client, theirs, batch)
            if not same_state(client, ours, theirs, args.sensors):
                raise SystemExit(f"K={k}: the two scripts left different buffers: today's is not the same arithmetic")
        finally:
            for buffer in (ours, theirs):
                delete_prefix(client, buffer.layout.prefix)
        events = args.rounds * args.sensors * k
        new, old = totals["new"] / events * 1e6, totals["old"] / events * 1e6
        report["by_k"][k] = {"redis_us_per_event": round(new[0], 3), "baseline_redis_us_per_event": round(old[0], 3),
                             "wall_us_per_event": round(new[1], 3), "baseline_wall_us_per_event": round(old[1], 3),
                             "ratio": round(old[0] / new[0], 3), "wall_ratio": round(old[1] / new[1], 3)}
        rows.append([k, fmt(new[0], ".2f"), fmt(old[0], ".2f"), fmt(old[0] / new[0], ".2f"),
                     fmt(new[1], ".2f"), fmt(old[1], ".2f")])
    print_table(f"Apply script, {args.sensors:,} sensors a batch, µs per event (today against {args.baseline}); "
                "buffers byte-identical", ["K", "Redis", "baseline Redis", "ratio", "wall", "baseline wall"], rows)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
