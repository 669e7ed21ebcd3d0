"""``esatrack stack up|down|status|logs [SERVICE]``: the local Kafka and OpenSearch, and the
pipeline's own processes (worker, indexer, receiver) with ``up --pipeline``.

``up`` starts Kafka and OpenSearch (what the tests need); ``up --pipeline`` also starts a worker,
the indexer and the receiver, one stage after the other; ``down`` and ``status`` cover every
service unless one is named."""

from __future__ import annotations

import argparse
import sys
import time

from streams.settings import get_settings
from streams.stack import control, process


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("up", "down", "status", "logs"))
    parser.add_argument(
        "service", nargs="?", choices=control.ALL_NAMES,
        help="only this service (default: up: kafka and opensearch; down, status: all; "
        "logs: kafka)",
    )
    parser.add_argument("--pipeline", action="store_true",
                        help="up: also start a worker, the indexer and the receiver")
    parser.add_argument("-n", "--lines", type=int, default=40, help="logs: lines to show")
    parser.add_argument("-f", "--follow", action="store_true", help="logs: keep printing")


def _progress(message: str) -> None:
    print(f"esatrack stack: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.action == "logs":
        return _logs(control.services(settings, [args.service or "kafka"])[0].files, args)
    if args.action == "up":
        if args.service:
            control.up(settings, control.services(settings, [args.service]), _progress)
        else:
            control.up_staged(settings, _progress, pipeline=args.pipeline)
        return 0
    chosen = control.services(settings, [args.service] if args.service else control.ALL_NAMES)
    if args.action == "down":
        control.down(settings, chosen, _progress)
    else:
        for row in control.status(chosen):
            print(row.line())
    return 0


def _logs(files: process.ProcessFiles, args: argparse.Namespace) -> int:
    for line in process.tail(files.log_file, args.lines):
        print(line)
    if not files.log_file.exists():
        _progress(f"no log yet at {files.log_file}")
        return 1
    if args.follow:
        with files.log_file.open(errors="replace") as handle:
            handle.seek(0, 2)
            while True:
                line = handle.readline()
                if line:
                    print(line, end="", flush=True)
                else:
                    time.sleep(0.5)
    return 0
