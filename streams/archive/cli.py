"""``esatrack verify --host H --date YYYY-MM-DD``: recompute one appliance's raw chain for one
day and report the first broken or missing link. Exit 0 intact, 1 defect found."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError

from streams.archive.chain import index_for_day
from streams.archive.store import stream_chain
from streams.archive.verify import ChainReport, verify_chain
from streams.errors import EsatrackError, ServiceUnavailable
from streams.opensearch.client import make_client
from streams.settings import get_settings

PROGRESS_EVERY = 100_000


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="appliance name (the esa.raw key)")
    parser.add_argument("--date", required=True, type=_day, help="UTC day, YYYY-MM-DD")


def _with_progress(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for count, doc in enumerate(docs, 1):
        if count % PROGRESS_EVERY == 0:
            print(f"verify: {count} links checked", file=sys.stderr)
        yield doc


def verify(host: str, day: str) -> ChainReport:
    """Verify the chain of ``host`` on ``day`` in the configured cluster."""
    settings = get_settings()
    client = make_client(settings, timeout=120)
    try:
        report = verify_chain(host, day, _with_progress(stream_chain(client, host, day)))
    except NotFoundError:
        raise EsatrackError(f"no raw archive index {index_for_day(day)}: nothing was archived "
                            f"on {day} (UTC); check the date and ESATRACK_OPENSEARCH_URL") from None
    except OSConnectionError:
        raise ServiceUnavailable(f"OpenSearch at {settings.opensearch_url} did not answer; start "
                                 "it or set ESATRACK_OPENSEARCH_URL") from None
    finally:
        client.close()
    if report.links == 0 and report.problem is None:
        raise EsatrackError(f"no raw lines of host {host!r} on {day} (UTC) in "
                            f"{index_for_day(day)}; check the appliance name")
    return report


def run(args: argparse.Namespace) -> int:
    report = verify(args.host, args.date)
    if report.problem is None:
        print(f"{report.host} {report.day}: chain intact, {report.lines} lines in "
              f"{report.links} links, head {report.head_hash}")
        return 0
    print(f"{report.host} {report.day}: CHAIN BROKEN at link {report.problem.seq} "
          f"({report.problem.kind}): {report.problem.message}; {report.links} links "
          f"({report.lines} lines) verified before it")
    return 1
