"""Tracking-search latency over a large message index, measured while indexing goes on.

Bulk-loads generated message records (default 1,000,000) into daily indices built from the
shipped templates (``bench-messages-YYYY.MM.DD`` behind the alias ``bench-messages``, so the
esa-* indices are not touched), then, while a background thread keeps bulk-indexing new
records (refresh every second, as in production), times the tracking queries that
``esatrack search`` and ``esatrack show`` send:

* lookup by host + MID, and by Message-ID (``show``, ``search --mid``/``--message-id``);
* sender is X within a 24-hour range (``search --sender X --from ... --to ...``).

Each query is timed twice: the single search request (first page of up to 100 rows, what a
table view shows), and end to end as ``esatrack search`` streams every match (one plain search
when the result fits in a page, else PIT + search_after). The kinds are interleaved.

    .venv/bin/python bench/bench_search.py                 # 1M records, 10 days
    .venv/bin/python bench/bench_search.py --records 50000 --queries 100   # quick run
    .venv/bin/python bench/bench_search.py --reuse          # keep the loaded set between runs

Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from opensearchpy import OpenSearch

from streams.opensearch.client import make_client
from streams.opensearch.templates import load_component_templates, load_index_templates
from streams.search.criteria import Criteria, Op, TextMatch
from streams.search.query import build_query, build_sort
from streams.search.stream import stream_hits
from streams.settings import load_settings

ALIAS = "bench-messages"
HOSTS = ("esa1", "esa2", "esa3", "esa4")
DOMAINS = ("example.com", "corp.example", "mail.example.org", "uni.example.ac.th",
           "isp.example.net", "shop.example", "bank.example", "news.example")
SUBJECTS = ("Invoice {n}", "Re: meeting {n}", "Your order #{n} has shipped", "Weekly report",
            "Password reset", "", "FW: contract draft {n}", "Newsletter {n}")
STATUSES = (("delivered", 0.86), ("bounced", 0.04), ("quarantined", 0.05),
            ("partially_delivered", 0.02), ("dropped", 0.03))
START = datetime(2024, 3, 1, tzinfo=UTC)


def index_body() -> dict[str, Any]:
    """Settings and mappings of an esa-messages daily index, composed from the schema files."""
    components = load_component_templates()
    template = load_index_templates()["esa-messages"]
    body: dict[str, Any] = {"settings": {}, "mappings": {"properties": {}}}
    for part in [components[name]["template"] for name in template["composed_of"]] + [
            template["template"]]:
        for key, value in part.get("settings", {}).get("index", {}).items():
            body["settings"].setdefault("index", {})[key] = copy.deepcopy(value)
        mappings = part.get("mappings", {})
        body["mappings"]["properties"].update(copy.deepcopy(mappings.get("properties", {})))
        if "dynamic" in mappings:
            body["mappings"]["dynamic"] = mappings["dynamic"]
    body["settings"]["index"].update(number_of_shards=1, number_of_replicas=0)
    return body


class Generator:
    """Deterministic message records: a skewed sender population (a few heavy senders, a long
    tail), 1-3 recipients, per-host MID counters, unique Message-IDs, a handful of events."""

    def __init__(self, seed: int, senders: int, days: int, total: int) -> None:
        self.rng = random.Random(seed)
        self.senders = [f"user{n}@{DOMAINS[n % len(DOMAINS)]}" for n in range(senders)]
        self.days = days
        self.total = total
        self.mids = dict.fromkeys(HOSTS, 100_000)
        self.serial = 0

    def sender(self) -> str:
        # 30% of mail from 1% of senders: bulk mailers and busy users exist.
        heavy = max(1, len(self.senders) // 100)
        if self.rng.random() < 0.3:
            return self.senders[self.rng.randrange(heavy)]
        return self.senders[self.rng.randrange(len(self.senders))]

    def record(self, when: datetime) -> dict[str, Any]:
        rng = self.rng
        self.serial += 1
        host = HOSTS[self.serial % len(HOSTS)]
        self.mids[host] += 1
        mid = self.mids[host]
        status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        recipients = [{
            "rid": n, "address": f"rcpt{rng.randrange(200_000)}@{rng.choice(DOMAINS)}",
            "status": "delivered" if status == "delivered" else rng.choice(
                ("delivered", "hard_bounced", "soft_bounced")),
            "dcid": rng.randrange(1_000_000), "response": "250 2.0.0 Ok: queued",
            "updated_at": (when + timedelta(seconds=2)).isoformat(),
        } for n in range(rng.choice((1, 1, 1, 2, 3)))]
        ts = when.isoformat()
        return {
            "type": "message", "id": f"{host}:{mid}:{int(when.timestamp())}", "host": host,
            "mid": mid, "icid": mid * 3, "revision": 1, "started_at": ts,
            "finished_at": (when + timedelta(seconds=3)).isoformat(), "complete": True,
            "sender": self.sender(), "recipients": recipients,
            "message_id": f"<{self.serial}.{rng.getrandbits(40):x}@{rng.choice(DOMAINS)}>",
            "subject": rng.choice(SUBJECTS).format(n=rng.randrange(10_000)),
            "size": rng.randrange(800, 2_000_000), "direction": rng.choice(
                ("incoming", "incoming", "outgoing")),
            "policy": "DEFAULT", "client": {
                "ip": f"198.51.{rng.randrange(256)}.{rng.randrange(256)}",
                "rdns": "mx.example.net", "rdns_verified": True,
                "sbrs": round(rng.uniform(-10, 10), 1), "sender_group": "UNKNOWNLIST"},
            "verdicts": {"antispam": "negative", "antivirus": "negative"},
            "tags": [status] if status in ("delivered", "dropped") else [],
            "status": status,
            "events": [{"ts": ts, "kind": kind, "text": text} for kind, text in (
                ("msg_start", f"Start MID {mid} ICID {mid * 3}"),
                ("msg_verdict", "antispam negative"), ("msg_verdict", "antivirus negative"),
                ("msg_queued", "queued for delivery"), ("dlv_done", "Message done"))],
        }

    def history(self) -> Iterator[dict[str, Any]]:
        """``total`` records evenly over ``days`` days from START, in time order."""
        step = self.days * 86_400 / self.total
        for n in range(self.total):
            yield self.record(START + timedelta(seconds=n * step))


def daily(when_iso: str) -> str:
    return f"{ALIAS}-{when_iso[:10].replace('-', '.')}"


def bulk(client: OpenSearch, records: list[dict[str, Any]]) -> None:
    """One bulk request, pre-serialised with orjson; raises on any item error."""
    lines = bytearray()
    for record in records:
        lines += orjson.dumps({"index": {"_index": daily(record["started_at"]),
                                         "_id": record["id"]}})
        lines += b"\n" + orjson.dumps(record) + b"\n"
    response = client.bulk(body=bytes(lines), params={"request_timeout": 300})
    if response.get("errors"):
        first = next(i for i in response["items"] if "error" in i["index"])
        raise SystemExit(f"bulk item refused: {first['index']['error']}")


def load(client: OpenSearch, gen: Generator, chunk: int) -> float:
    """Create the daily indices and bulk-load the history; returns records per second."""
    body = index_body()
    for day in range(gen.days + 1):
        name = f"{ALIAS}-{START + timedelta(days=day):%Y.%m.%d}"
        day_body = copy.deepcopy(body)
        day_body["settings"]["index"]["refresh_interval"] = "-1"
        # Bench-only: loading fast matters here, not surviving a crash mid-load.
        day_body["settings"]["index"]["translog"] = {"durability": "async"}
        day_body["aliases"] = {ALIAS: {}}
        client.indices.create(index=name, body=day_body)
    started = time.perf_counter()
    done = 0
    # Two requests in flight: one being indexed while the next is generated and sent.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[Future[None]] = []
        batch: list[dict[str, Any]] = []
        for record in gen.history():
            batch.append(record)
            if len(batch) < chunk:
                continue
            pending.append(pool.submit(bulk, client, batch))
            batch = []
            while len(pending) >= 2:
                pending.pop(0).result()
                done += chunk
            if done and done % (chunk * 25) == 0:
                rate = done / (time.perf_counter() - started)
                print(f"\rloaded {done:,}/{gen.total:,} ({rate:,.0f}/s)", end="",
                      file=sys.stderr, flush=True)
        if batch:
            pending.append(pool.submit(bulk, client, batch))
        for future in pending:
            future.result()
    elapsed = time.perf_counter() - started
    print(file=sys.stderr)
    client.indices.put_settings(index=f"{ALIAS}-*", body={"index": {
        "refresh_interval": "1s", "translog.durability": "request"}})
    client.indices.refresh(index=ALIAS)
    print("force-merging to 1 segment per index ...", file=sys.stderr, flush=True)
    client.indices.forcemerge(index=f"{ALIAS}-*", params={"max_num_segments": "1",
                                                         "request_timeout": 3600})
    return gen.total / elapsed


class BackgroundIndexer(threading.Thread):
    """Keeps bulk-indexing new records (into the last day) until stopped; counts them."""

    def __init__(self, client: OpenSearch, gen: Generator, chunk: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.client, self.gen, self.chunk = client, gen, chunk
        self.interval = chunk / rate if rate > 0 else 0.0
        self.stop = threading.Event()
        self.indexed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        last_day = START + timedelta(days=self.gen.days)
        try:
            due = time.perf_counter()
            while not self.stop.is_set():
                records = [self.gen.record(last_day + timedelta(seconds=self.gen.rng.randrange(
                    86_000))) for _ in range(self.chunk)]
                bulk(self.client, records)
                self.indexed += len(records)
                due += self.interval  # paced: one bulk per interval, no catching up in bursts
                self.stop.wait(max(0.0, due - time.perf_counter()))
                due = max(due, time.perf_counter() - self.interval)
        except BaseException as exc:  # reported by the main thread after join
            self.error = exc


def sample(client: OpenSearch, size: int, seed: int) -> list[dict[str, Any]]:
    """Random existing records to look up (random_score over the whole alias)."""
    response = client.search(index=ALIAS, body={
        "size": size, "_source": ["host", "mid", "message_id", "sender", "started_at"],
        "query": {"function_score": {"random_score": {"seed": seed, "field": "_seq_no"}}},
    })
    return [hit["_source"] for hit in response["hits"]["hits"]]


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (f"n={len(values):4d}  p50 {pick(0.50):7.1f}  p95 {pick(0.95):7.1f}  "
            f"p99 {pick(0.99):7.1f}  max {ordered[-1]:7.1f}  mean {statistics.fmean(values):7.1f}"
            " ms")


def timed(
    client: OpenSearch, criteria_list: list[Criteria]
) -> tuple[list[float], list[float], list[float], int]:
    """(first-page wall ms, server took ms, streamed end-to-end ms, total hits)."""
    page, took, streamed = [], [], []
    hits_total = 0
    for criteria in criteria_list:
        query, sort = build_query(criteria), build_sort()
        body = {"size": 100, "query": query, "sort": sort, "track_total_hits": False}
        start = time.perf_counter()
        response = client.search(index=ALIAS, body=body)
        page.append((time.perf_counter() - start) * 1000)
        took.append(float(response["took"]))
        start = time.perf_counter()
        count = len(list(stream_hits(client, ALIAS, query, sort)))
        streamed.append((time.perf_counter() - start) * 1000)
        hits_total += count
    return page, took, streamed, hits_total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--senders", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=500, help="per query kind")
    parser.add_argument("--chunk", type=int, default=2_000, help="bulk size while loading")
    parser.add_argument("--live-chunk", type=int, default=500,
                        help="bulk size of the background indexer")
    parser.add_argument("--live-rate", type=float, default=0,
                        help="records/s the background indexer aims at (0: as fast as it can)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an already loaded set of this size, and keep it afterwards")
    args = parser.parse_args(argv)

    client = make_client(load_settings(), timeout=600)
    gen = Generator(seed=7, senders=args.senders, days=args.days, total=args.records)
    existing = 0
    if client.indices.exists_alias(name=ALIAS):
        existing = int(client.count(index=ALIAS)["count"])
    if args.reuse and existing >= args.records:
        print(f"reusing {existing:,} records in {ALIAS}", file=sys.stderr)
        load_rate = None
    else:
        client.indices.delete(index=f"{ALIAS}-*", params={"ignore_unavailable": "true"})
        load_rate = load(client, gen, args.chunk)
    total = int(client.count(index=ALIAS)["count"])
    stats = client.indices.stats(index=ALIAS, metric="store,docs")["_all"]["primaries"]

    rng = random.Random(11)
    picks = sample(client, args.queries, seed=3)
    by_mid = [Criteria(hosts=(p["host"],), mid=int(p["mid"])) for p in picks]
    by_message_id = [Criteria(message_id=p["message_id"]) for p in picks]
    by_sender: list[Criteria] = []
    for p in picks:
        end = datetime.fromisoformat(p["started_at"]) + timedelta(hours=rng.uniform(0, 24))
        by_sender.append(Criteria(sender=TextMatch(Op.IS, p["sender"]),
                                  start=end - timedelta(hours=24), end=end))

    for warm in (by_mid[:20], by_message_id[:20], by_sender[:20]):
        timed(client, warm)

    indexer = BackgroundIndexer(make_client(load_settings(), timeout=600), gen, args.live_chunk,
                                args.live_rate)
    indexer.start()
    time.sleep(2)  # let indexing reach its pace before measuring
    measured_from = time.perf_counter()
    kinds: list[tuple[str, list[Criteria]]] = [
        ("host + MID", by_mid), ("Message-ID", by_message_id), ("sender + 24 h", by_sender)]
    results: dict[str, tuple[list[float], list[float], list[float], int]] = {
        name: ([], [], [], 0) for name, _ in kinds}
    # Interleaved (one of each kind in turn), so a burst of load elsewhere on the machine hits
    # every kind alike instead of whichever happened to be measured at that moment.
    for n in range(len(picks)):
        for name, criteria_list in kinds:
            page, took, streamed, hits = timed(client, [criteria_list[n]])
            old = results[name]
            results[name] = (old[0] + page, old[1] + took, old[2] + streamed, old[3] + hits)
    seconds = time.perf_counter() - measured_from
    indexer.stop.set()
    indexer.join()
    if indexer.error is not None:
        print(f"background indexer failed: {indexer.error!r}", file=sys.stderr)
        return 1

    print(f"records: {total:,} message records in {args.days + 1} daily indices "
          f"({stats['docs']['count']:,} Lucene docs with nested recipients, "
          f"{stats['store']['size_in_bytes'] / 2**30:.2f} GiB)")
    if load_rate is not None:
        print(f"bulk load: {load_rate:,.0f} records/s (one client thread, chunk {args.chunk})")
    aim = f"aiming at {args.live_rate:,.0f}/s" if args.live_rate > 0 else "unthrottled"
    print(f"background indexing during measurement ({aim}): {indexer.indexed:,} records in "
          f"{seconds:.1f} s = {indexer.indexed / seconds:,.0f} records/s, refresh 1 s")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (1 min), "
          f"{os.cpu_count()} CPUs")
    for name, (page, took, streamed, hits) in results.items():
        print(f"{name:14} first page (wall)      {percentiles(page)}")
        print(f"{'':14} server took            {percentiles(took)}")
        print(f"{'':14} streamed (PIT, all)    {percentiles(streamed)}   "
              f"avg {hits / len(page):.1f} hits")
    if not args.reuse:
        client.indices.delete(index=f"{ALIAS}-*", params={"ignore_unavailable": "true"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
