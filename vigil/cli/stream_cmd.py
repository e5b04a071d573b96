"""``vigil stream``: run the streamer (streamer/app.py)."""

from __future__ import annotations

import argparse
import signal
import sys

from vigil.cli.args import add_model_dir, port_number
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    stream = sub.add_parser(
        "stream",
        help="run the streamer: Kafka → Redis rolling buffers → batched scoring → scores and alerts",
        description=(
            "Consume the events topic in a consumer group, keep each sensor's rolling window in "
            "Redis, score ready windows in batches with the current model, and publish scores and "
            "alerts. Invalid events go to the DLQ topic with the reason. Offsets are committed only "
            "after Redis and Kafka acknowledged the batch. SIGTERM/SIGINT drain, commit and exit 0. "
            "Prometheus metrics, /healthz and /readyz are served on --metrics-port."
        ),
        epilog="Tuning lives in settings under `stream` (vigil config show): e.g. VIGIL_STREAM__MAX_WAIT=100ms.",
    )
    add_model_dir(stream)
    stream.add_argument("--group-id", help="consumer group (default: settings, vigil-streamer)")
    stream.add_argument("--no-score", action="store_true", help="ingest only: fill the buffers, score nothing")
    stream.add_argument("--metrics-port", type=port_number, help="port for /metrics, /healthz, /readyz (0: off; default 9108)")
    stream.add_argument("--delivery", choices=["at-least-once", "exactly-once"],
                        help="at-least-once (default): a crash may re-send score records, not an alert "
                             "(docs/guarantees.md); "
                             "exactly-once: records and offsets commit in one Kafka transaction "
                             "(read the output topics with isolation.level=read_committed)")
    stream.add_argument("--instance-id", metavar="NAME",
                        help="this replica's stable name (e.g. a StatefulSet pod): a restart takes its "
                             "partitions back at once and fences its previous incarnation")
    stream.set_defaults(handler=_stream)


def _stream(args: argparse.Namespace, settings: VigilSettings) -> int:
    stream = settings.stream.model_copy(update={
        k: v for k, v in (("group_id", args.group_id), ("metrics_port", args.metrics_port),
                          ("delivery", args.delivery), ("instance_id", args.instance_id)) if v is not None
    } | ({"scoring": False} if args.no_score else {}))
    stream = stream.model_validate(stream.model_dump())  # --instance-id is checked like the setting
    settings = settings.model_copy(update={"stream": stream, **({"model_dir": args.model_dir} if args.model_dir else {})})
    from streamer.app import Streamer  # imports Keras: only for this command, once its options are valid

    streamer = Streamer(settings)

    def on_signal(signum, _frame) -> None:
        if streamer.stop_event.is_set():
            raise KeyboardInterrupt  # a second signal: stop without draining
        print(f"vigil stream: {signal.Signals(signum).name}, draining and committing", file=sys.stderr)
        streamer.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return streamer.run()
