"""The indexer against the real Kafka and OpenSearch: revisions collapse to one document and
stale ones lose, refused documents reach the dead-letter topic with the reason, and the raw
archive's chain survives restarts and redeliveries and exposes edits and deletions."""

from __future__ import annotations

import contextlib
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from opensearchpy import OpenSearch

from streams.cli import main
from streams.indexer.service import Indexer
from streams.opensearch.naming import KINDS, daily_index
from streams.settings import Settings, load_settings
from streams.stack import control

pytestmark = pytest.mark.integration


@dataclass
class Pipeline:
    """Names and settings of one test's indexer pipeline."""

    settings: Settings
    group: str
    day: datetime

    def produce(self, topic: str, values: list[tuple[bytes | None, bytes | None]],
                timestamp_ms: int | None = None) -> None:
        """Produce (key, value) pairs to ``topic`` and wait for every delivery."""
        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap,
                             "linger.ms": 20, "acks": "all"})
        failures: list[str] = []

        def report(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(str(error))

        for key, value in values:
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=report,
                                     timestamp=timestamp_ms or 0)
                    break
                except BufferError:
                    producer.poll(0.1)
        assert producer.flush(60) == 0
        assert not failures, failures

    def records(self, records: list[dict[str, Any]], topic: str | None = None) -> None:
        self.produce(topic or self.settings.topic_messages,
                     [(None, orjson.dumps(r)) for r in records])

    def committed(self, topic: str) -> int:
        """Sum over the topic's partitions of the group's committed offsets."""
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                             "group.id": self.group})
        try:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            parts = [TopicPartition(topic, p) for p in meta.partitions]
            return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
        finally:
            consumer.close()

    @contextlib.contextmanager
    def running(self, settings: Settings | None = None) -> Iterator[Indexer]:
        """An indexer running in a thread for the duration of the block (stopped after)."""
        indexer = Indexer(settings or self.settings, group=self.group)
        failure: list[BaseException] = []

        def target() -> None:
            try:
                indexer.run()
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=target, name="test-indexer", daemon=True)
        thread.start()
        try:
            yield indexer
        finally:
            indexer.stop()
            thread.join(120)
        assert not thread.is_alive(), "indexer did not stop within 120 s"
        assert not failure, failure


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


def random_past_day() -> datetime:
    """A random UTC day between 1975 and 2000: no other test and no retention run uses it."""
    return datetime(1975, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(9000))


@pytest.fixture
def pipeline(new_topic: Callable[..., str], new_group: Callable[[], str],
             opensearch: OpenSearch, kafka_bootstrap: str) -> Iterator[Pipeline]:
    day = random_past_day()
    settings = load_settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_messages=new_topic(2), topic_connections=new_topic(), topic_raw=new_topic(2),
        topic_dead_letters=new_topic(),
        indexer_batch_seconds=0.2, indexer_backoff_max_seconds=2.0,
    )
    yield Pipeline(settings, new_group(), day)
    for kind in KINDS:
        opensearch.indices.delete(index=daily_index(kind, day), ignore_unavailable=True)


def message(pipeline: Pipeline, rid: str, revision: int, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "id": rid, "host": "esa1", "mid": 1, "revision": revision,
            "started_at": pipeline.day.isoformat(), "subject": f"revision {revision}", **extra}


def sample(indexer_metrics: Any, name: str, **labels: str) -> float:
    value = indexer_metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


def test_revisions_collapse_and_stale_one_loses(pipeline: Pipeline, opensearch: OpenSearch) -> None:
    """A record's revisions end as one document at the newest revision, even when an older
    revision arrives after it."""
    rid = f"esa1:m:{uuid.uuid4().hex}"
    index = daily_index("messages", pipeline.day)
    topic = pipeline.settings.topic_messages
    with pipeline.running() as indexer:
        pipeline.records([message(pipeline, rid, 1), message(pipeline, rid, 3)])
        wait_for(lambda: pipeline.committed(topic) == 2, what="two revisions committed")
        pipeline.records([message(pipeline, rid, 2)])
        wait_for(lambda: pipeline.committed(topic) == 3, what="late revision committed")
        applied = sample(indexer.metrics, "esatrack_indexer_docs_already_applied_total",
                         kind="messages")
    opensearch.indices.refresh(index=index)
    doc = opensearch.get(index=index, id=rid)
    assert (doc["_source"]["revision"], doc["_source"]["subject"], doc["_version"]) == (
        3, "revision 3", 3)
    found = opensearch.count(index=index, body={"query": {"term": {"id": rid}}})
    assert found["count"] == 1
    assert applied >= 1


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                found.append(msg)
    finally:
        consumer.close()
    return found


def test_refused_and_undecodable_go_to_dead_letters(pipeline: Pipeline,
                                                    opensearch: OpenSearch) -> None:
    """A document the mapping refuses and a value that is not JSON land in the dead-letter
    topic with the reason; the good record is indexed; every offset is committed."""
    good, bad = f"good-{uuid.uuid4().hex}", f"bad-{uuid.uuid4().hex}"
    topic = pipeline.settings.topic_messages
    pipeline.produce(topic, [
        (b"k1", orjson.dumps(message(pipeline, good, 1))),
        (b"k2", orjson.dumps(message(pipeline, bad, 1, size="huge"))),
        (b"k3", b"\xff\xfe this is not JSON"),
    ])
    with pipeline.running() as indexer:
        wait_for(lambda: pipeline.committed(topic) == 3, what="all three committed")
        dead = sample(indexer.metrics, "esatrack_indexer_docs_dead_lettered_total",
                      kind="messages", stage="index")
        undecodable = sample(indexer.metrics, "esatrack_indexer_docs_dead_lettered_total",
                             kind="messages", stage="decode")
    assert (dead, undecodable) == (1, 1)
    index = daily_index("messages", pipeline.day)
    opensearch.indices.refresh(index=index)
    assert opensearch.exists(index=index, id=good)
    assert not opensearch.exists(index=index, id=bad)
    letters = read_all(pipeline.settings.kafka_bootstrap, pipeline.settings.topic_dead_letters, 2)
    by_key = {m.key(): orjson.loads(m.value()) for m in letters}
    assert set(by_key) == {b"k2", b"k3"}
    assert by_key[b"k2"]["stage"] == "index"
    assert "mapper_parsing_exception" in by_key[b"k2"]["reason"]
    assert orjson.loads(by_key[b"k2"]["value"])["id"] == bad
    assert by_key[b"k3"]["stage"] == "decode"
    assert "not JSON" in by_key[b"k3"]["reason"]
    assert by_key[b"k3"]["source"]["topic"] == topic


def verify(host: str, day: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", "--host", host, "--date", day])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def chain_doc(opensearch: OpenSearch, index: str, host: str, seq: int) -> dict[str, Any]:
    found = opensearch.search(index=index, body={"query": {"bool": {"filter": [
        {"term": {"host": host}}, {"term": {"seq": seq}}]}}})
    (hit,) = found["hits"]["hits"]
    return dict(hit)


def test_raw_chain_survives_restart_and_exposes_tampering(
        pipeline: Pipeline, opensearch: OpenSearch, new_group: Callable[[], str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Raw lines chain per appliance and day; a restart with every line redelivered neither
    forks nor restarts the chain; an edited line and a deleted line are each reported by
    `esatrack verify` at the right link, with a non-zero exit."""
    host = f"esa-{uuid.uuid4().hex[:8]}"
    day = pipeline.day.date().isoformat()
    index = daily_index("raw", pipeline.day)
    stamp = int(pipeline.day.timestamp() * 1000) + 3_600_000
    topic = pipeline.settings.topic_raw

    def lines(first: int, last: int) -> list[tuple[bytes | None, bytes | None]]:
        return [(host.encode(), f"Info: MID {n} ICID {n} From: <u{n}@example.com>".encode())
                for n in range(first, last)]

    pipeline.produce(topic, lines(0, 100), timestamp_ms=stamp)
    with pipeline.running():
        wait_for(lambda: pipeline.committed(topic) == 100, what="100 raw lines committed")
    code, out = verify(host, day, capsys)
    assert (code, "chain intact, 100 lines in 100 links,") == (
        0, out.split(": ", 1)[-1][:37]), out

    # A new group re-reads every line (as after lost commits), then 50 new lines follow.
    again = replace(pipeline, group=new_group())
    pipeline.produce(topic, lines(100, 150), timestamp_ms=stamp)
    with again.running():
        wait_for(lambda: again.committed(topic) == 150, what="150 raw lines committed")
    code, out = verify(host, day, capsys)
    assert code == 0
    assert "chain intact, 150 lines in 150 links" in out
    opensearch.indices.refresh(index=index)
    assert opensearch.count(index=index, body={"query": {"term": {"host": host}}})["count"] == 150

    tampered = chain_doc(opensearch, index, host, 10)
    original = tampered["_source"]["line"]
    opensearch.update(index=index, id=tampered["_id"], refresh=True,
                      body={"doc": {"line": original.replace("u9@", "evil@")}})
    code, out = verify(host, day, capsys)
    assert code == 1
    assert "link 10 (altered)" in out

    opensearch.update(index=index, id=tampered["_id"], refresh=True,
                      body={"doc": {"line": original}})
    assert verify(host, day, capsys)[0] == 0
    opensearch.delete(index=index, id=chain_doc(opensearch, index, host, 20)["_id"],
                      refresh=True)
    code, out = verify(host, day, capsys)
    assert code == 1
    assert "link 20 (missing)" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def progress(message: str) -> None:
    print(f"[outage-test opensearch] {message}", file=sys.stderr, flush=True)


def test_opensearch_outage_loses_and_duplicates_nothing(pipeline: Pipeline,
                                                        tmp_path: Path) -> None:
    """OpenSearch stopped in the middle of indexing and started again: the indexer retries by
    itself, commits nothing past unacknowledged documents meanwhile, and in the end every
    record is indexed exactly once."""
    http_port = free_port()
    own = load_settings(stack_dir=tmp_path / "stack", opensearch_http_port=http_port,
                        opensearch_transport_port=free_port(), opensearch_heap="512m")
    node = control.services(own, ["opensearch"])
    control.up(own, node, progress)
    client = OpenSearch(hosts=[f"http://127.0.0.1:{http_port}"])
    try:
        settings = pipeline.settings.model_copy(
            update={"opensearch_url": f"http://127.0.0.1:{http_port}"})
        topic = settings.topic_messages
        total = 20_000
        batch = [message(pipeline, f"outage-{n}", 1) for n in range(total)]
        pipeline.records(batch[: total // 2])
        with pipeline.running(settings) as indexer:
            wait_for(lambda: sample(indexer.metrics, "esatrack_indexer_docs_indexed_total",
                                    kind="messages") > 0, what="indexing to begin")
            control.down(own, node, progress)
            pipeline.records(batch[total // 2:])
            wait_for(lambda: sample(indexer.metrics, "esatrack_indexer_retries_total",
                                    cause="opensearch") >= 2, what="the indexer to retry")
            held = pipeline.committed(topic)
            time.sleep(3)
            assert pipeline.committed(topic) == held < total  # no commit past un-acked docs
            assert indexer.metrics.outage is not None
            control.up(own, node, progress)
            wait_for(lambda: pipeline.committed(topic) == total, timeout=300,
                     what="every record committed after the restart")
            assert indexer.metrics.outage is None
        index = daily_index("messages", pipeline.day)
        client.indices.refresh(index=index)
        assert client.count(index=index)["count"] == total
        every = {"ids": {"values": [record["id"] for record in batch]}}
        assert client.count(index=index, body={"query": every})["count"] == total
    finally:
        client.close()
        control.down(own, node, progress)
