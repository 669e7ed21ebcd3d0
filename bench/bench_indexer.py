"""Indexing throughput: records and raw lines from Kafka into OpenSearch through the indexer.

Fills fresh topics with N message records (about 1.6 KB each: two recipients, verdicts, client,
nine timeline events) and M raw lines first, then starts one indexer (in this process) and times
it from its first poll until the consumer group has committed every offset, i.e. until OpenSearch
acknowledged every document. Prints records/s and raw lines/s, batch latency and the CPU time
of this process. Needs the local stack (`esatrack stack up`); cleans up its topics and indices.

    .venv/bin/python bench/bench_indexer.py --records 100000 --raw 100000
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import socket
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.indexer.service import Indexer
from streams.opensearch.client import make_client
from streams.opensearch.naming import KINDS, daily_index
from streams.settings import Settings, load_settings
from streams.stack import control, process

STATUSES = ["delivered", "delivered", "delivered", "hard_bounced", "soft_bounced"]
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def record(n: int, day: datetime, rng: random.Random) -> dict[str, Any]:
    """A delivered message record shaped like schemas/message.schema.json."""
    start = day + timedelta(seconds=rng.randrange(86_000))
    at = start.isoformat().replace("+00:00", "Z")
    statuses = [rng.choice(STATUSES) for _ in range(2)]
    return {
        "type": "message", "id": f"m-{rng.getrandbits(96):024x}", "host": f"esa{n % 4}",
        "mid": 1_000_000 + n, "icid": 500_000 + n, "revision": 12,
        "started_at": at, "finished_at": at, "updated_at": at, "complete": True,
        "expired": False, "status": "delivered",
        "sender": f"user{rng.randrange(5000)}@sender{rng.randrange(300)}.example.com",
        "recipients": [
            {"rid": r, "address": f"rcpt{rng.randrange(20000)}@corp{r}.example.org",
             "status": statuses[r], "dcid": 70_000 + n, "updated_at": at,
             "response": "250 2.0.0 Ok: queued as 4Xyz", "remote_ip": "203.0.113.25"}
            for r in range(2)
        ],
        "message_id": f"{uuid.UUID(int=rng.getrandbits(128))}@sender.example.com",
        "subject": f"Invoice {n} for order {rng.randrange(10**6)} - please review",
        "size": rng.randrange(2_000, 2_000_000), "attachments": [{"name": f"inv{n}.pdf"}],
        "direction": "inbound", "policy": "DEFAULT",
        "client": {"ip": f"198.51.{rng.randrange(256)}.{rng.randrange(256)}",
                   "rdns": "mail.sender.example.com", "rdns_verified": True, "sbrs": 3.5,
                   "sender_group": "UNKNOWNLIST", "flow": "ACCEPT", "interface": "Data 1",
                   "country": "TH", "tls": "TLSv1.3"},
        "auth_user": None,
        "verdicts": {"antispam": "negative", "antivirus": "clean", "virus_name": None,
                     "amp": "clean", "graymail": "negative", "outbreak": "negative",
                     "dlp": None, "spf": "pass", "dkim": "pass", "dmarc": "pass"},
        "quarantines": [], "tags": ["delivered"], "parent_mid": None, "child_mids": [],
        "events": [{"ts": at, "kind": f"step{k}", "text": f"MID {n} step {k} of processing"}
                   for k in range(9)],
    }


def check_shape(sample: dict[str, Any]) -> None:
    """Fail early if the generated record no longer matches the record schema."""
    schema = orjson.loads((SCHEMAS / "message.schema.json").read_bytes())
    jsonschema.validate(sample, schema)


def produce(settings: Settings, topic: str, pairs: list[tuple[bytes | None, bytes]],
            timestamp_ms: int = 0) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 50,
                         "compression.type": "lz4", "batch.size": 1_000_000})
    for key, value in pairs:
        while True:
            try:
                producer.produce(topic, value=value, key=key, timestamp=timestamp_ms)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise SystemExit("Kafka did not take every message within 120 s")


def committed(settings: Settings, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        found = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        return sum(max(tp.offset, 0) for tp in found)
    finally:
        consumer.close()


def service_cpu(settings: Settings) -> dict[str, float]:
    """CPU seconds used so far by the stack's Kafka and by the OpenSearch of ``settings``."""
    used = {}
    tick = os.sysconf("SC_CLK_TCK")
    nodes = [*control.services(load_settings(), ["kafka"]),
             *control.services(settings, ["opensearch"])]
    for svc in nodes:
        pid = process.running_pid(svc.files)
        if pid is None:
            continue
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        used[svc.name] = (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_report(label: str, n: int, before: dict[str, float], after: dict[str, float]) -> None:
    for name in sorted(after):
        spent = after[name] - before.get(name, 0.0)
        if spent > 0:
            print(f"  {name} CPU for {label}: {spent:.1f} s ({n / spent:,.0f} per CPU-second)")


def timed_run(settings: Settings, group: str, topic: str, total: int) -> tuple[float, Indexer]:
    """Run an indexer until ``total`` offsets of ``topic`` are committed; wall seconds."""
    indexer = Indexer(settings, group=group)
    indexer.start()  # templates, topics, subscription: not part of the timed run
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            indexer.step()

    thread = threading.Thread(target=loop, daemon=True)
    begun = time.monotonic()
    thread.start()
    last_report = begun
    # The indexer's own counter says when every document is acknowledged (cheap to read);
    # only then ask Kafka for the committed offsets, which come right after.
    def done() -> float:  # stored, or found stored already: both are acknowledged
        return (sample(indexer, "esatrack_indexer_docs_indexed_total")
                + sample(indexer, "esatrack_indexer_docs_already_applied_total"))

    while done() < total:
        time.sleep(0.05)
        if not thread.is_alive():
            raise SystemExit("the indexer's loop stopped: see its error above")
        if time.monotonic() - last_report > 5:
            last_report = time.monotonic()
            print(f"  ... {int(done()):,}/{total:,}", flush=True)
    while committed(settings, group, topic) < total:
        time.sleep(0.05)
    elapsed = time.monotonic() - begun
    stop.set()
    thread.join()
    indexer.close()
    return elapsed, indexer


def sample(indexer: Indexer, name: str) -> float:
    """A counter of the indexer summed over its labels."""
    return sum(s.value for metric in indexer.metrics.registry.collect()
               for s in metric.samples if s.name == name)


def batch_figures(indexer: Indexer) -> str:
    reg = indexer.metrics.registry
    count = reg.get_sample_value("esatrack_indexer_batch_seconds_count") or 0
    total = reg.get_sample_value("esatrack_indexer_batch_seconds_sum") or 0
    return f"{int(count)} batches, mean {total / count * 1000:.0f} ms" if count else "no batches"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--raw", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--shared-opensearch", action="store_true",
                        help="index into the stack's OpenSearch instead of a private node (its "
                             "CPU figures then include whatever else uses that node)")
    args = parser.parse_args()
    if args.shared_opensearch:
        run(args, load_settings(), None)
        return
    with tempfile.TemporaryDirectory(prefix="bench-indexer-") as home:
        own = load_settings(stack_dir=Path(home), opensearch_http_port=free_port(),
                            opensearch_transport_port=free_port())
        node = control.services(own, ["opensearch"])
        print(f"starting a private OpenSearch on port {own.opensearch_http_port}", flush=True)
        control.up(own, node, lambda _message: None)
        try:
            run(args, own, f"http://127.0.0.1:{own.opensearch_http_port}")
        finally:
            control.down(own, node, lambda _message: None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_day(client: Any, rng: random.Random) -> datetime:
    """A day (1970-1972) none of whose daily indices exists: documents an interrupted run left
    (same ids, same revisions) would be skipped as already stored and never counted."""
    for _ in range(100):
        day = datetime(1970, 1, 2, tzinfo=UTC) + timedelta(days=rng.randrange(1000))
        if not any(client.indices.exists(index=daily_index(kind, day)) for kind in KINDS):
            return day
    raise SystemExit("no free day in 1970-1972: delete the esa-*-1970.* ... 1972.* indices")


def run(args: argparse.Namespace, stack: Settings, opensearch_url: str | None) -> None:
    """Fill topics, index them with a timed indexer, print figures, clean up."""

    tag = uuid.uuid4().hex[:8]
    base = load_settings()
    url = {"opensearch_url": opensearch_url} if opensearch_url else {}
    settings = load_settings(
        **url,
        topic_messages=f"bench-messages-{tag}", topic_connections=f"bench-connections-{tag}",
        topic_raw=f"bench-raw-{tag}", topic_dead_letters=f"bench-dead-{tag}",
        topic_partitions=args.partitions)
    rng = random.Random(7)
    client = make_client(settings)
    day = free_day(client, random.Random(tag))
    admin = AdminClient({"bootstrap.servers": base.kafka_bootstrap})
    topics = [settings.topic_messages, settings.topic_connections, settings.topic_raw,
              settings.topic_dead_letters]
    for future in admin.create_topics([NewTopic(t, args.partitions, 1) for t in topics]).values():
        future.result(30)
    try:
        check_shape(record(0, day, rng))
        values = [orjson.dumps(record(n, day, rng)) for n in range(args.records)]
        size = sum(map(len, values)) / max(1, len(values))
        print(f"producing {args.records:,} records ({size:.0f} bytes each) and "
              f"{args.raw:,} raw lines", flush=True)
        produce(settings, settings.topic_messages, [(None, v) for v in values])
        raw_lines = [(f"esa{n % 4}".encode(),
                      f"Thu Mar 17 10:{n % 60:02d}:00 2024 Info: MID {n} ICID {n} RID 0 To: "
                      f"<rcpt{n}@corp.example.org>".encode()) for n in range(args.raw)]
        produce(settings, settings.topic_raw, raw_lines,
                timestamp_ms=int((day + timedelta(hours=1)).timestamp() * 1000))

        print(f"refresh interval {settings.opensearch_refresh_interval}, "
              f"{settings.indexer_bulk_concurrency} bulk requests in flight, batches of "
              f"{settings.indexer_batch_docs}", flush=True)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        jvm0 = service_cpu(stack)
        if args.records:
            group = f"bench-records-{tag}"
            # The records run reads only the messages topic (the raw one has its own run).
            records_settings = settings.model_copy(update={"topic_raw": f"bench-none-{tag}"})
            topics.append(records_settings.topic_raw)
            seconds, indexer = timed_run(records_settings, group, settings.topic_messages,
                                         args.records)
            print(f"records: {args.records:,} in {seconds:.1f} s = "
                  f"{args.records / seconds:,.0f} records/s ({batch_figures(indexer)})")
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        jvm1 = service_cpu(stack)
        cpu_report("records", args.records, jvm0, jvm1)
        if args.raw:
            group = f"bench-raw-{tag}"
            raw_settings = settings.model_copy(update={
                "topic_messages": f"bench-none-m-{tag}",
                "topic_connections": f"bench-none-c-{tag}"})
            topics += [raw_settings.topic_messages, raw_settings.topic_connections]
            seconds, indexer = timed_run(raw_settings, group, settings.topic_raw, args.raw)
            print(f"raw lines (hash-chained): {args.raw:,} in {seconds:.1f} s = "
                  f"{args.raw / seconds:,.0f} lines/s ({batch_figures(indexer)})")
        cpu2 = resource.getrusage(resource.RUSAGE_SELF)
        cpu_report("raw lines", args.raw, jvm1, service_cpu(stack))
        for label, before, after, n in (("records", cpu0, cpu1, args.records),
                                        ("raw", cpu1, cpu2, args.raw)):
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if n:
                print(f"indexer process CPU for {label}: {cpu:.1f} s "
                      f"({n / cpu:,.0f} per CPU-second)")
        load = open("/proc/loadavg").read().split()[0]  # noqa: SIM115 -- one read
        print(f"load average at the end: {load}")
    finally:
        for kind in KINDS:
            client.indices.delete(index=daily_index(kind, day), ignore_unavailable=True)
        client.close()
        admin.delete_topics(topics)


if __name__ == "__main__":
    main()
