"""Fixtures of the worker tests: a unique set of topics and a group per test, removed after."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tests.worker.worker_helpers import WorkerEnv


@pytest.fixture
def worker_env(kafka_bootstrap: str) -> Iterator[WorkerEnv]:
    """Unique topic names and worker group; the topics (and the changelog) go afterwards."""
    tag = uuid.uuid4().hex[:10]
    env = WorkerEnv(
        bootstrap=kafka_bootstrap,
        raw=f"test-worker-{tag}.raw",
        messages=f"test-worker-{tag}.messages",
        connections=f"test-worker-{tag}.connections",
        unparsed=f"test-worker-{tag}.unparsed",
        group=f"test-worker-{tag}",
    )
    yield env
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topics = [env.raw, env.messages, env.connections, env.unparsed, env.changelog]
    existing = set(admin.list_topics(timeout=30).topics)
    doomed = [t for t in topics if t in existing]
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=30).values():
            with contextlib.suppress(KafkaException):
                future.result(timeout=30)
    for future in admin.delete_consumer_groups([env.group], request_timeout=30).values():
        with contextlib.suppress(KafkaException):  # a group that never committed is no error
            future.result(timeout=30)
