"""``esatrack parse``: log files (plain, ``.gz`` or ``-`` for stdin) -> JSON Lines events."""

from __future__ import annotations

import argparse
import gzip
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

import orjson

from streams import events as ev
from streams.errors import EsatrackError
from streams.events import Event
from streams.parse.parser import Parser

_PROGRESS_EVERY = 200_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="log files to parse (.gz is decompressed; '-' reads stdin)")
    parser.add_argument("--host", help="appliance name for lines without a host "
                        "(default: ESATRACK_DEFAULT_HOST)")
    parser.add_argument("--tz", help="IANA zone of stamps without a zone "
                        "(default: ESATRACK_TIMEZONE)")
    parser.add_argument("--year", type=int, help="year of syslog stamps without one "
                        "(default: inferred from the current date)")
    parser.add_argument("--stats", action="store_true",
                        help="print one JSON object of counts instead of the events")


def event_dict(event: Event) -> dict[str, Any]:
    """The JSON form of an event (``raw`` as latin-1 text only when it was kept)."""
    out: dict[str, Any] = {
        "kind": event.kind, "ts": event.ts, "host": event.host, "tag": event.tag,
        "level": event.level, "icid": event.icid, "mid": event.mid, "dcid": event.dcid,
        "body": event.body, "data": event.data,
    }
    if event.raw is not None:
        out["raw"] = event.raw.decode("latin-1")
    if event.truncated:
        out["truncated"] = True
    return out


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
        yield line.rstrip(b"\n")


def run(args: argparse.Namespace) -> int:
    from streams.settings import get_settings  # noqa: PLC0415 - read settings only when run

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["default_host"] = args.host
    if args.tz:
        overrides["timezone"] = args.tz
    if args.year:
        overrides["year"] = args.year
    try:
        parser = Parser.from_settings(get_settings(), **overrides)
    except (ValueError, KeyError) as exc:  # an unknown zone from --tz
        raise EsatrackError(f"{exc}; pass an IANA zone such as 'UTC' or 'Asia/Bangkok'") from exc
    counts: Counter[str] = Counter()
    total = 0
    out = sys.stdout.buffer
    dumps = orjson.dumps
    for name in args.files:
        with _open(name) as handle:
            for event in parser.parse_lines(_lines(handle)):
                total += 1
                counts[event.kind] += 1
                if not args.stats:
                    out.write(dumps(event_dict(event), option=orjson.OPT_APPEND_NEWLINE))
                if total % _PROGRESS_EVERY == 0:
                    print(f"esatrack parse: {total} lines", file=sys.stderr)
    if args.stats:
        unknown = counts.get(ev.UNKNOWN, 0)
        summary = {"lines": total, "parsed": total - unknown, "unknown": unknown,
                   "kinds": dict(sorted(counts.items()))}
        out.write(dumps(summary, option=orjson.OPT_APPEND_NEWLINE))
    out.flush()
    return 0
