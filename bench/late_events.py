"""What late and resent events cost the buffer's apply (Redis + the Lua script), against in-order ones.

The apply script compares an event at or before its sensor's newest with the records of its time
chunk, to count a resent event (same timestamp and values) as a duplicate (docs/gateways.md). In-order
events skip that check. This measures ``RollingBuffer.apply`` alone (no Kafka) over the same events
in three orders, each into a fresh Redis key prefix:

* **in_order** (the baseline): each sensor's events by time;
* **shuffled**: the same events in random order within the day (every event but the newest is late);
* **resent**: in order, then every event a second time at new offsets (all resent duplicates).

The last line of stdout is one JSON object: events/s per order and ``ratio_shuffled_to_in_order``,
``ratio_resent_to_in_order``.

    .venv/bin/python bench/late_events.py             # 200 sensors x 1 day at one event a minute
    .venv/bin/python bench/late_events.py --quick     # 50 sensors
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from _common import bench_settings, delete_prefix, fill_unset, log, print_table, redis_client, run_id
from vigil.buffer import BufferLayout, EventBatch, RollingBuffer
from vigil.events.schema import SensorEvent

DAY_MS = 86_400_000
T0 = 1_767_225_600_000


def batches(rows: list[tuple[str, int]], first_offset: int, size: int) -> list[EventBatch]:
    out = []
    for start in range(0, len(rows), size):
        batch = EventBatch(2)
        for k, (sensor, ts) in enumerate(rows[start:start + size]):
            batch.add(SensorEvent(sensor, ts, (float(ts % 97), 1.0), None), 0, first_offset + start + k)
        out.append(batch)
    return out


def apply_rate(buffer: RollingBuffer, work: list[EventBatch]) -> float:
    n = sum(len(b) for b in work)
    started = time.perf_counter()
    for batch in work:
        buffer.apply(batch)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sensors", type=int)
    parser.add_argument("--batch", type=int, default=5000, help="events per apply (the streamer's poll_events)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    fill_unset(args, quick={"sensors": 50}, full={"sensors": 200})
    rid = run_id()
    settings = bench_settings("late", rid)
    client = redis_client(settings)
    ts = T0 + np.arange(DAY_MS // 60_000) * 60_000
    in_order = [(f"s{i}", int(t)) for i in range(args.sensors) for t in ts]
    shuffled = [in_order[i] for i in np.random.default_rng(0).permutation(len(in_order))]
    rates = {}
    for name, rows, again in (("in_order", in_order, None), ("shuffled", shuffled, None), ("resent", in_order, in_order)):
        prefix = f"{settings.redis.key_prefix}-{name}"
        buffer = RollingBuffer(client, BufferLayout(prefix, 2, 10 * DAY_MS), "events")
        try:
            first = apply_rate(buffer, batches(rows, 0, args.batch))
            rates[name] = apply_rate(buffer, batches(again, len(rows), args.batch)) if again else first
            log(f"{name}: {rates[name]:,.0f} events/s")
        finally:
            delete_prefix(client, prefix)
    print_table("buffer apply by event order", ["order", "events/s"], [[k, f"{v:,.0f}"] for k, v in rates.items()])
    print(json.dumps({"events": len(in_order), "sensors": args.sensors, "batch": args.batch,
                      **{f"{k}_events_per_s": round(v) for k, v in rates.items()},
                      "ratio_shuffled_to_in_order": round(rates["shuffled"] / rates["in_order"], 3),
                      "ratio_resent_to_in_order": round(rates["resent"] / rates["in_order"], 3)}))


if __name__ == "__main__":
    main()
