"""``vigil dlq replay``: dead letters back to the events topic once their cause is fixed."""

from __future__ import annotations

import argparse
import json
import sys
import time

from pydantic_core import PydanticCustomError

from vigil.durations import parse_duration
from vigil.errors import VigilError
from vigil.events.schema import REASONS, parse_timestamp_ms
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "dlq", help="re-publish dead letters once their cause is fixed",
        description="Dead letters (`vigil tail dlq` lists them) keep the original key, value and headers. "
                    "Once their cause is fixed (a schema or a setting such as stream.max_future), `vigil dlq "
                    "replay` publishes them to the events topic again, and only once: each filter (--reason, "
                    "or all) remembers in a consumer group of its own how far it got.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    replay = actions.add_parser(
        "replay", help="publish the dead letters not replayed yet to the events topic",
        description="Publish each dead letter not yet replayed by this filter to the events topic (key, value "
                    "and the producer's own headers unchanged, plus vigil.replayed_from). Prints one JSON "
                    "object: read, replayed, skipped and replayed_by_reason. A replayed event that is still "
                    "invalid goes to the DLQ again; one already buffered counts as a resent duplicate.",
    )
    replay.add_argument("--reason", choices=sorted(REASONS), help="only dead letters with this reason")
    replay.add_argument("--since", metavar="WHEN",
                        help="only dead letters written at or after WHEN: ISO-8601 (2026-12-01T08:00Z) or a "
                             "duration ago (6h, 2d); older ones are passed over for good by this filter")
    replay.add_argument("--dry-run", action="store_true", help="count what would be replayed; publish nothing")
    replay.set_defaults(handler=_replay)


def since_ms(text: str | None, now_ms: int | None = None) -> int | None:
    if text is None:
        return None
    try:
        return (now_ms or int(time.time() * 1000)) - int(parse_duration(text).total_seconds() * 1000)
    except ValueError:
        pass
    try:
        return parse_timestamp_ms(text)
    except (ValueError, PydanticCustomError):
        raise VigilError(f"--since {text!r} is neither ISO-8601 (2026-12-01T08:00Z) nor a duration (6h, 2d)") from None


def _replay(args: argparse.Namespace, settings: VigilSettings) -> int:
    from vigil.kafka.dlq import replay_dead_letters

    start = since_ms(args.since)
    result = replay_dead_letters(settings, args.reason, start, args.dry_run,
                                 on_progress=lambda n: print(f"read {n} dead letters", file=sys.stderr))
    print(json.dumps({**result.as_dict(), "dry_run": args.dry_run}))
    return 0
