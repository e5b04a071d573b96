"""The records step (stage 5, ``plan_batch``): the alert policy over a batch at once, against the
policy one window at a time, in the same run.

``plan_batch`` turns a scored batch into its score records, the alert policy's alert or cleared
records, the journal entries and each sensor's new meta. It now asks ``AlertPolicy.decide_many``
once per batch (the policy's rules as array operations over the batch's columns); commit 6759781
(``_raw_path.PER_WINDOW_COMMIT``) asked ``AlertPolicy.decide`` once per window and built each
window's alert state as a dataclass. The baseline is that commit's real code, in a child process on a
git worktree (``_raw_path.RawPath``), on the same windows (``_raw_path.plan_windows``: scores about a
threshold, explanations, every head's value, a tenth of the sensors already above). The repeats
alternate between the two, so both see the same machine load. No Kafka, no Redis: this is the
Python work between the model call and the send.

The last line of stdout is one JSON object: windows/s and µs per window of each, and
``ratio_vs_per_window`` (today's windows/s / the baseline's); records and alerts of each, which
must be equal.

    .venv/bin/python bench/records.py            # 20,000 windows in batches of 5,000, 5 repeats
    .venv/bin/python bench/records.py --quick    # 5,000 windows, 3 repeats
"""

from __future__ import annotations

import argparse
import json
import statistics

from _common import fill_unset, log, print_table
from _raw_path import PER_WINDOW_COMMIT, RawPath, plan_windows, time_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, help="scored windows per pass")
    parser.add_argument("--batch", type=int, default=5000, help="windows per plan_batch call (max_batch_windows)")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    fill_unset(args, quick={"windows": 5000, "repeats": 3}, full={"windows": 20000, "repeats": 5})

    windows = plan_windows(args.windows, args.seed)
    now, before = [], []
    with RawPath(PER_WINDOW_COMMIT) as old:
        old.call("plan_setup", n=args.windows, seed=args.seed)
        time_plan(windows, args.batch), old.call("plan_run", batch=args.batch)  # warm-up, untimed
        for r in range(args.repeats):
            now.append(time_plan(windows, args.batch))
            before.append(old.call("plan_run", batch=args.batch))
            log(f"repeat {r + 1}/{args.repeats}: {now[-1]['windows_per_s']:,.0f} vs "
                f"{before[-1]['windows_per_s']:,.0f} windows/s")
    rate = statistics.median(x["windows_per_s"] for x in now)
    base = statistics.median(x["windows_per_s"] for x in before)
    same = [(x["records"], x["alerts"]) for x in now] == [(x["records"], x["alerts"]) for x in before]
    print_table(f"plan_batch, {args.windows:,} windows in batches of {args.batch:,} (median of {args.repeats})",
                ["path", "windows/s", "µs per window", "records", "alerts"],
                [["batch at once (decide_many)", f"{rate:,.0f}", f"{1e6 / rate:.1f}", now[0]["records"], now[0]["alerts"]],
                 [f"per window ({PER_WINDOW_COMMIT})", f"{base:,.0f}", f"{1e6 / base:.1f}", before[0]["records"],
                  before[0]["alerts"]]])
    print(json.dumps({"windows": args.windows, "batch": args.batch, "repeats": args.repeats,
                      "windows_per_s": round(rate), "us_per_window": round(1e6 / rate, 2),
                      "per_window_windows_per_s": round(base), "per_window_us_per_window": round(1e6 / base, 2),
                      "records": now[0]["records"], "alerts": now[0]["alerts"], "same_records_and_alerts": same,
                      "ratio_vs_per_window": round(rate / base, 3)}))


if __name__ == "__main__":
    main()
