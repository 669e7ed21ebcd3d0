"""``esatrack correlate``: log files -> message and connection records as JSON Lines.

The offline twin of the stream workers: the same parser and the same engine, driven by the
files' own log time. One line per record, its final revision (``--all-revisions`` writes every
emission instead, as the stream would); open state is flushed at the end of the input, so
unfinished messages come out with ``complete: false``. A summary goes to stderr.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

import orjson

from streams import events as ev
from streams.correlate.engine import Correlator
from streams.correlate.records import Record
from streams.errors import EsatrackError

_PROGRESS_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="log files in time order (.gz is decompressed; '-' reads stdin)")
    parser.add_argument("--host", help="appliance name for lines without a host "
                        "(default: ESATRACK_DEFAULT_HOST)")
    parser.add_argument("--tz", help="IANA zone of stamps without a zone "
                        "(default: ESATRACK_TIMEZONE)")
    parser.add_argument("--year", type=int, help="year of syslog stamps without one "
                        "(default: inferred from the current date)")
    parser.add_argument("--grace", type=float, metavar="SECONDS",
                        help="log seconds to wait after a message's last line before emitting "
                        "it (default: ESATRACK_GRACE_SECONDS)")
    parser.add_argument("--all-revisions", action="store_true",
                        help="write every revision as it is emitted, not only the last")


@contextmanager
def _open(name: str) -> Iterator[IO[bytes]]:
    if name == "-":
        yield sys.stdin.buffer
        return
    path = Path(name)
    if not path.is_file():
        raise EsatrackError(f"{name}: no such file; give a path to a mail log (or '-' for stdin)")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as gz_handle:
                yield cast(IO[bytes], gz_handle)
        else:
            with path.open("rb") as handle:
                yield handle
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise EsatrackError(f"{name}: cannot read ({exc}); check the file and its "
                            "compression") from exc


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    for line in handle:
        yield line.rstrip(b"\r\n")


class _Writer:
    """Writes each record's last revision once its state is gone (or at the end)."""

    def __init__(self, out: IO[bytes], all_revisions: bool) -> None:
        self.out = out
        self.all_revisions = all_revisions
        self.pending: dict[str, bytes] = {}
        self.written = 0
        self.by_type: dict[str, int] = {"message": 0, "connection": 0}

    def add(self, records: list[Record]) -> None:
        for record in records:
            data = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
            if self.all_revisions:
                self._write(record["type"], data)
            else:
                if record["id"] not in self.pending:
                    self.by_type[record["type"]] += 1
                self.pending[record["id"]] = data

    def final(self, ids: list[str]) -> None:
        for record_id in ids:
            data = self.pending.pop(record_id, None)
            if data is not None:
                self.out.write(data)
                self.written += 1

    def close(self) -> None:
        for data in self.pending.values():
            self.out.write(data)
            self.written += 1
        self.pending.clear()
        self.out.flush()

    def _write(self, record_type: str, data: bytes) -> None:
        self.out.write(data)
        self.written += 1
        self.by_type[record_type] += 1


def run(args: argparse.Namespace) -> int:
    from streams.parse import Parser  # noqa: PLC0415 - imported when the command runs
    from streams.settings import get_settings  # noqa: PLC0415 - read settings only when run

    settings = get_settings()
    parser_options: dict[str, Any] = {}
    engine_options: dict[str, Any] = {}
    if args.host:
        parser_options["default_host"] = engine_options["default_host"] = args.host
    if args.tz:
        parser_options["timezone"] = args.tz
    if args.year:
        parser_options["year"] = args.year
    if args.grace is not None:
        if args.grace < 0:
            raise EsatrackError("--grace must be 0 or more seconds")
        engine_options["grace_seconds"] = args.grace
    try:
        parser = Parser.from_settings(settings, **parser_options)
    except (ValueError, KeyError) as exc:  # an unknown zone from --tz
        raise EsatrackError(f"{exc}; pass an IANA zone such as 'UTC' or 'Asia/Bangkok'") from exc
    engine = Correlator.from_settings(settings, **engine_options)
    writer = _Writer(sys.stdout.buffer, args.all_revisions)
    lines = unknown = 0
    started = last_report = time.monotonic()
    for name in args.files:
        with _open(name) as handle:
            for event in parser.parse_lines(_lines(handle)):
                lines += 1
                if event.kind == ev.UNKNOWN:
                    unknown += 1
                records = engine.apply(event)
                if records:
                    writer.add(records)
                if records or not lines & 0xFFF:
                    writer.final(engine.retired_ids())
                if not lines & 0xFFFF and time.monotonic() - last_report > _PROGRESS_SECONDS:
                    last_report = time.monotonic()
                    print(f"esatrack correlate: {lines} lines, {writer.written} records "
                          f"written, {engine.open_counts()['messages']} messages open",
                          file=sys.stderr)
    writer.add(engine.flush())
    writer.close()
    counts = engine.counts
    elapsed = time.monotonic() - started
    print(f"esatrack correlate: {lines} lines ({unknown} unknown, {counts['unrouted']} without "
          f"an id to join on, {counts['duplicates']} duplicates), {writer.written} records "
          f"({writer.by_type['message']} messages, {writer.by_type['connection']} connections, "
          f"{counts['expired']} expired) in {elapsed:.1f} s", file=sys.stderr)
    return 0
