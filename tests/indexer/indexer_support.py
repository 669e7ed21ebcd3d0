"""Helpers of the indexer integration tests: one test's pipeline (topics, group, settings, a
random past day), producing to Kafka, reading committed offsets, an indexer in a thread."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.indexer.service import Indexer
from streams.settings import Settings


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
