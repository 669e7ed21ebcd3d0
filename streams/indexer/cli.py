"""``esatrack indexer``: index esa.messages, esa.connections and esa.raw into OpenSearch until
SIGTERM/SIGINT, serving Prometheus metrics and health on ``ESATRACK_METRICS_PORT``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from streams.indexer.metrics import MetricsServer
from streams.indexer.service import Indexer
from streams.settings import get_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", help="consumer group (default ESATRACK_INDEXER_GROUP)")


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # opensearch-py logs every failed request with a traceback; our retry line says it once.
    logging.getLogger("opensearch").setLevel(logging.ERROR)
    indexer = Indexer(settings, group=args.group)
    server = None
    if settings.metrics_port:
        server = MetricsServer(indexer.metrics, settings.metrics_port)
        server.start()
        print(f"indexer: metrics and health on :{server.port} (/metrics, /healthz, /readyz)",
              file=sys.stderr)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        print(f"indexer: {signal.Signals(signum).name}: finishing the current batch",
              file=sys.stderr)
        indexer.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        indexer.run()
    finally:
        if server is not None:
            server.stop()
    return 0
