"""``esatrack worker``: run one stream worker (raw lines on Kafka -> records on Kafka).

Start as many as there are cores or machines: they share the partitions of ``esa.raw``
through the consumer group ``ESATRACK_WORKER_GROUP``. Each needs its own state directory.
Stops cleanly on SIGINT/SIGTERM; a worker killed outright loses nothing (its successor
carries on from the committed offsets and the changelog).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from streams.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        help="where the RocksDB tables live (default: ESATRACK_STATE_DIR)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="port of /metrics, /healthz, /readyz; 0 turns it off "
                        "(default: ESATRACK_METRICS_PORT)")
    parser.add_argument("--no-create-topics", action="store_true",
                        help="do not create missing topics (they must exist)")


def run(args: argparse.Namespace) -> int:
    from streams.settings import get_settings  # noqa: PLC0415  # read settings only when run
    from streams.worker.app import create_app  # noqa: PLC0415  # faust is heavy to import
    from streams.worker.processor import PartitionProcessor  # noqa: PLC0415  # same
    from streams.worker.topics import ensure_topics, raw_partition_count  # noqa: PLC0415  # same

    settings = get_settings()
    overrides: dict[str, object] = {}
    if args.state_dir is not None:
        overrides["state_dir"] = args.state_dir
    if args.metrics_port is not None:
        if not 0 <= args.metrics_port <= 65535:
            raise ConfigError("--metrics-port must be between 0 and 65535")
        overrides["metrics_port"] = args.metrics_port
    if overrides:
        settings = settings.model_copy(update=overrides)

    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("streams.worker")
    if not args.no_create_topics:
        created = ensure_topics(settings)
        if created:
            log.info("created topics: %s", ", ".join(created))
    partitions = raw_partition_count(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    log.info("worker group %s, %d partitions of %s, state in %s, metrics on port %s",
             settings.worker_group, partitions, settings.topic_raw, settings.state_dir,
             settings.metrics_port or "(off)")
    log.debug("settings: %s", settings.safe_dict())
    worker = create_app(settings, PartitionProcessor.factory(settings),
                        raw_partitions=partitions)
    worker.run()  # blocks; faust's worker exits the process when it stops
    return 0
