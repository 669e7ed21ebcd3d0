"""``esatrack demo``: bring up the whole local chain, send the sample logs through syslog, wait
until what they produce is indexed, and say what came out.

The chain is the real one: the receiver (TCP syslog, octet-counted) -> ``esa.raw`` -> a worker
-> ``esa.messages`` / ``esa.connections`` -> the indexer -> OpenSearch. The services stay up
afterwards for exploring; ``esatrack stack down`` stops them all.

Records are emitted when a message finishes (after the grace period of log time, which an idle
appliance advances with wall time); messages whose ``Message finished`` line is not among the
samples stay open in the worker until they finish or expire, as they would in production.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from opensearchpy import OpenSearch

from streams.demo import observe, samples
from streams.errors import EsatrackError
from streams.opensearch.client import make_client
from streams.opensearch.naming import alias
from streams.settings import Settings, get_settings
from streams.stack import control, pipeline

PUBLISHED = "esatrack_ingest_published_total"
SETTLE_SECONDS = 6.0
"""The index counts must stay unchanged this long (with every input consumed) to be final."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=Path, metavar="DIR",
                        help="folder with esa-text/ and esa-cef/ sample logs "
                        "(default: shared/samples beside the checkout)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                        help="give up waiting for the records after this long (default 300)")


def _say(message: str) -> None:
    print(f"esatrack demo: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    root = args.samples or samples.default_samples_dir(Path.cwd().resolve())
    if root is None:
        raise EsatrackError("no shared/samples folder found above the current directory; "
                            "pass --samples DIR")
    files = samples.sample_files(root)
    lines = list(samples.read_lines(files))

    control.up_staged(settings, _say, pipeline=True)
    client = make_client(settings)
    before = _snapshot(settings, client)

    _say(f"sending {len(lines)} lines from {len(files)} sample files in {root} over TCP syslog "
         f"to 127.0.0.1:{settings.receiver_tcp_port}")
    _send(settings.receiver_tcp_port, lines)

    published = _wait(
        "receiver to publish them to Kafka", args.timeout,
        lambda: _delta(settings, "receiver", PUBLISHED, before) >= len(lines),
    )
    if not published:
        raise EsatrackError("the receiver did not publish every line in time; see "
                            "`esatrack stack logs receiver` and its /metrics")
    _wait("worker to read them", args.timeout,
          lambda: _delta(settings, "worker", "esatrack_worker_lines_total", before) >= len(lines))
    settled = _wait_settled(settings, client, args.timeout)
    after = _snapshot(settings, client)
    _report(len(lines), before, after, settled)
    _suggest(client)
    return 0


def _send(port: int, lines: list[bytes]) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"".join(samples.octet_counted(line) for line in lines))
    except OSError as exc:
        raise EsatrackError(f"cannot send to the receiver on 127.0.0.1:{port} ({exc}); "
                            "check `esatrack stack status` and `esatrack stack logs receiver`"
                            ) from exc


Snapshot = dict[str, float]


def _snapshot(settings: Settings, client: OpenSearch) -> Snapshot:
    snap: Snapshot = {}
    for name in pipeline.PIPELINE_NAMES:
        for key, value in observe.scrape(pipeline.metrics_port(settings, name)).items():
            snap[f"{name}:{key}"] = value
    for kind in ("messages", "connections"):
        snap[f"index:{kind}"] = observe.count(client, alias(kind))
    return snap


def _delta(settings: Settings, service: str, metric: str, before: Snapshot) -> float:
    now = observe.scrape(pipeline.metrics_port(settings, service)).get(metric, 0.0)
    return now - before.get(f"{service}:{metric}", 0.0)


def _wait(what: str, timeout: float, done: Callable[[], bool]) -> bool:
    _say(f"waiting for the {what}")
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _wait_settled(settings: Settings, client: OpenSearch, timeout: float) -> bool:
    """Wait until the worker and indexer have no lag and the index counts stop changing."""
    _say(f"waiting for records to be emitted and indexed (grace {settings.grace_seconds:g}s "
         "of log time; idle appliances advance with wall time)")
    deadline = time.monotonic() + timeout
    last: tuple[int, int] | None = None
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        counts = (observe.count(client, alias("messages")),
                  observe.count(client, alias("connections")))
        lag = sum(observe.scrape(pipeline.metrics_port(settings, name)).get(metric, 0.0)
                  for name, metric in (("worker", "esatrack_worker_consumer_lag"),
                                       ("indexer", "esatrack_indexer_consumer_lag")))
        if counts != last or lag > 0:
            last, stable_since = counts, time.monotonic()
            _say(f"  indexed so far: {counts[0]} message and {counts[1]} connection records")
        elif time.monotonic() - stable_since >= max(SETTLE_SECONDS, settings.grace_seconds + 2):
            return True
        time.sleep(1.0)
    return False


def _report(sent: int, before: Snapshot, after: Snapshot, settled: bool) -> None:
    def grew(key: str) -> int:
        return int(after.get(key, 0.0) - before.get(key, 0.0))

    out = sys.stdout
    print("\nesatrack demo: the sample logs went through the whole chain", file=out)
    print(f"  lines sent over syslog          {sent}", file=out)
    print(f"  lines published to Kafka        {grew('receiver:esatrack_ingest_published_total')}",
          file=out)
    print(f"  lines read by the worker        {grew('worker:esatrack_worker_lines_total')}",
          file=out)
    print(f"  unknown lines (dead letters)    {grew('worker:esatrack_worker_unknown_lines_total')}",
          file=out)
    print(f"  {'records emitted by the worker':<32}{grew('worker:esatrack_worker_records_total')} "
          "(revisions included)", file=out)
    # Record ids are deterministic: lines sent again (a second demo) rewrite the same documents,
    # so the index totals are what a user searches and the "new" part is only what this run added.
    for kind in ("message", "connection"):
        key = f"index:{kind}s"
        label = f"{kind} records in the index"
        print(f"  {label:<32}{int(after[key])} "
              f"({grew(key)} new; the same lines again rewrite the same ids)", file=out)
    still_open = int(after.get("worker:esatrack_worker_open_messages", 0.0))
    print(f"  messages open in the worker     {still_open} (not finished yet)", file=out)
    if not settled:
        print("  (still changing when the timeout ran out: counts may grow)", file=out)


def _suggest(client: OpenSearch) -> None:
    """Ready-to-paste commands that find a real record: a finished message with a sender."""
    body = {"size": 1, "sort": [{"started_at": "desc"}],
            "query": {"bool": {"filter": [{"term": {"complete": True}},
                                          {"exists": {"field": "sender"}}],
                               "must_not": [{"term": {"sender": ""}}]}}}
    hits = client.search(index=alias("messages"), body=body)["hits"]["hits"]
    if hits:
        src = hits[0]["_source"]
        day = str(src["started_at"])[:10]
        print("\nTry:")
        print(f"  .venv/bin/esatrack search --host {src['host']} --sender '{src['sender']}' "
              f"--from {day}")
        print(f"  .venv/bin/esatrack show {src['id']}")
    print("\nThe services stay up; stop them with: .venv/bin/esatrack stack down")
