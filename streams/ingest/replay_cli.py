"""``esatrack replay FILE...``: backfill appliance log files into the raw topic.

Prints a progress bar on stderr and a final count; exits 1 unless every non-empty line read was
acknowledged by Kafka (replaying again is safe for the records: their ids are deterministic).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from streams.errors import EsatrackError
from streams.ingest.replay import Replayer
from streams.settings import get_settings

_BAR = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="appliance log files (plain or .gz) or syslog captures")
    parser.add_argument("--host", help="appliance name for every line (default: the syslog host "
                        "field of each line, else ESATRACK_DEFAULT_HOST)")
    parser.add_argument("--rate", type=float, help="at most this many lines per second")
    parser.add_argument("--topic", help="Kafka topic (default ESATRACK_TOPIC_RAW)")


class _Progress:
    def __init__(self, replayer: Replayer) -> None:
        self.replayer = replayer
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last_line = 0.0

    def _line(self, text: str, final: bool = False) -> None:
        if self.tty:
            sys.stderr.write("\r" + text.ljust(100) + ("\n" if final else ""))
            sys.stderr.flush()
        elif final or time.monotonic() - self.last_line >= 5.0:
            sys.stderr.write(text + "\n")
            self.last_line = time.monotonic()

    def file(self, path: Path, done: float) -> None:
        counts = self.replayer.counts
        filled = int(done * _BAR)
        rate = counts.produced / max(1e-6, time.monotonic() - self.started)
        self._line(f"{path.name[:30]} [{'#' * filled}{'.' * (_BAR - filled)}] {done:4.0%} "
                   f"{counts.read} read {counts.acknowledged} acked {rate:,.0f}/s",
                   final=done >= 1.0 and not self.tty)

    def flushing(self) -> None:
        counts = self.replayer.counts
        self._line(f"waiting for Kafka: {counts.acknowledged}/{counts.expected} acknowledged")


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        raise EsatrackError(f"no such file: {', '.join(missing)}; check the path(s)")
    if args.rate is not None and args.rate <= 0:
        raise EsatrackError("--rate must be a positive number of lines per second")
    replayer = Replayer(settings, topic=args.topic, host=args.host, rate=args.rate)
    progress = _Progress(replayer)
    for path in args.files:
        try:
            replayer.publish_file(path, progress.file)
        except (OSError, EOFError) as exc:  # unreadable, corrupt or truncated gzip: say which
            print(f"\nesatrack replay: error reading {path}: {exc}", file=sys.stderr)
            replayer.counts.unreadable_files += 1
    replayer.finish(progress.flushing)
    counts = replayer.counts
    if progress.tty:
        sys.stderr.write("\n")
    print(f"esatrack replay: {counts.read} lines read, {counts.empty} empty skipped, "
          f"{counts.acknowledged} acknowledged by Kafka (topic {replayer.topic}), "
          f"{counts.failed} failed, {counts.overlong} over {settings.max_line_bytes} bytes, "
          f"{counts.unreadable_files} unreadable files",
          file=sys.stderr)
    if counts.defaulted:
        print(f"esatrack replay: {counts.defaulted} lines named no appliance and were keyed "
              f"{settings.default_host!r} (ESATRACK_DEFAULT_HOST); use --host to name it",
              file=sys.stderr)
    if not counts.complete():
        reason = f" (first error: {replayer.first_error})" if replayer.first_error else ""
        print(f"esatrack replay: INCOMPLETE: {counts.expected - counts.acknowledged} of "
              f"{counts.expected} lines not acknowledged{reason}; check Kafka "
              f"({settings.kafka_bootstrap}) and run the replay again", file=sys.stderr)
        return 1
    return 0
