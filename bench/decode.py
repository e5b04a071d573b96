"""Stage 1's decode (``EventDecoder.decode_many``): today's msgspec Struct against commit
33bb1e1's orjson parse and column checks, on the same values, in the same run.

The values are what a gateway sends (``_raw_path.decode_values``: a sensor id, epoch-ms timestamp,
``--features`` float features, a label on one event in ten), all valid: the fast path's case, the
one the streamer meets per event. The baseline is that commit's real code in a child process on a
git worktree (``_raw_path.RawPath``); the repeats alternate between the two, so both see the same
machine load, and each run's best repeat counts. Both must decode the same events (a fingerprint
of the columns is compared). No Kafka, no Redis.

The last line of stdout is one JSON object: per feature count, µs an event of each, and
``ratio_vs_orjson`` (the baseline's µs / today's: above 1 is faster today).

    .venv/bin/python bench/decode.py                  # 2 and 8 features, 100,000 events, 5 repeats
    .venv/bin/python bench/decode.py --quick          # 20,000 events, 3 repeats
"""

from __future__ import annotations

import argparse
import json

from _common import fill_unset, log, print_table
from _raw_path import ORJSON_DECODE_COMMIT, RawPath, decode_values, time_decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, help="values decoded per pass")
    parser.add_argument("--features", default="2,8", help="comma-separated feature counts (default 2,8: "
                        "the demo's and latency.py's fleet, and SKAB's)")
    parser.add_argument("--batch", type=int, default=5000, help="values per decode_many call (stream.poll_events)")
    parser.add_argument("--sensors", type=int, default=5000)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--baseline-commit", default=ORJSON_DECODE_COMMIT)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    fill_unset(args, quick={"events": 20000, "repeats": 3}, full={"events": 100000, "repeats": 5})
    try:
        counts = [int(x) for x in args.features.split(",")]
    except ValueError:
        parser.error(f"--features must be comma-separated integers, got {args.features!r}")
    if not counts or min(counts) < 1:
        parser.error("--features needs at least one count, each at least 1")

    from vigil.events.decode import EventDecoder
    from vigil.events.schema import EventSchema

    figures = {}
    with RawPath(args.baseline_commit) as old:
        for features in counts:
            log(f"{features} feature(s): {args.events:,} values, {args.repeats} repeats alternating with "
                f"{args.baseline_commit}")
            raws = decode_values(args.events, features, args.sensors, args.seed)
            decoder = EventDecoder(EventSchema([f"feature_{j + 1}" for j in range(features)]))
            old.call("decode_setup", n=args.events, features=features, sensors=args.sensors, seed=args.seed)
            ours, theirs = [], []
            for _ in range(args.repeats):
                theirs.append(old.call("decode_run", batch=args.batch))
                ours.append(time_decode(decoder, raws, args.batch))
            if ours[0]["decoded"] != theirs[0]["decoded"]:
                raise RuntimeError(f"the two decoders disagree: {ours[0]['decoded']} against {theirs[0]['decoded']}")
            best, base = min(r["us_per_event"] for r in ours), min(r["us_per_event"] for r in theirs)
            figures[str(features)] = {"us_per_event": round(best, 3), "orjson_us_per_event": round(base, 3),
                                      "ratio_vs_orjson": round(base / best, 3), "events": args.events}
    print_table("decode_many, best repeat (µs an event)", ["features", "msgspec (today)", args.baseline_commit + " (orjson)",
                                                           "ratio"],
                [[k, f"{v['us_per_event']:.3f}", f"{v['orjson_us_per_event']:.3f}", f"{v['ratio_vs_orjson']:.2f} ×"]
                 for k, v in figures.items()])
    print(json.dumps({"features": figures, "batch": args.batch, "repeats": args.repeats,
                      "baseline_commit": args.baseline_commit}))


if __name__ == "__main__":
    main()
