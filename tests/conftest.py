"""Shared fixtures: the real local stack for integration tests, unique names per test.

Only fixtures that integration tests request touch the services, so pure tests never start
anything. The stack is started once per session if it is not running and then left as found:
what this session started, it stops at the end. If a service cannot be started, tests that
need it fail when ``CI=true`` (a CI run must not go green by skipping) and skip otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # the admin module re-exports it untyped
from opensearchpy import OpenSearch

from streams.errors import StackError
from streams.settings import Settings, load_settings
from streams.stack import control, process
from streams.stack.service import Service


def _progress(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"local stack unavailable (CI=true, not skipping): {reason}", pytrace=False)
    pytest.skip(f"local stack unavailable: {reason}")


class LocalStack:
    """Starts services on demand, remembers what it started, and stops only that."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started: list[Service] = []
        self.failures: dict[str, str] = {}

    def ensure(self, name: str) -> None:
        """Make the service ``name`` ready, or fail/skip the calling test with the reason."""
        if name in self.failures:
            _unavailable(self.failures[name])
        (svc,) = control.services(self.settings, [name])
        was_running = process.running_pid(svc.files) is not None
        try:
            control.up(self.settings, [svc], _progress)
        except StackError as exc:
            self.failures[name] = str(exc)
            _unavailable(str(exc))
        if not was_running:
            self.started.append(svc)

    def restore(self) -> None:
        if self.started:
            control.down(self.settings, self.started, _progress)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    stack = LocalStack(load_settings())
    yield stack
    stack.restore()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: LocalStack) -> str:
    """Bootstrap servers of the running local Kafka."""
    local_stack.ensure("kafka")
    return f"127.0.0.1:{local_stack.settings.kafka_port}"


@pytest.fixture(scope="session")
def opensearch(local_stack: LocalStack) -> Iterator[OpenSearch]:
    """An opensearch-py client of the running local OpenSearch."""
    local_stack.ensure("opensearch")
    client = OpenSearch(hosts=[f"http://127.0.0.1:{local_stack.settings.opensearch_http_port}"])
    yield client
    client.close()


def _unique(request: pytest.FixtureRequest, kind: str) -> str:
    """``<kind>-<test name>-<random>``: lower case, safe for topics, groups and index names."""
    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{kind}-{test}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def new_topic(
    request: pytest.FixtureRequest, kafka_bootstrap: str
) -> Iterator[Callable[..., str]]:
    """Factory: create a uniquely named topic (``partitions=1``); deleted after the test."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def create(partitions: int = 1) -> str:
        name = _unique(request, "test")
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[
            name
        ].result(timeout=30)
        created.append(name)
        return name

    yield create
    if created:
        for future in admin.delete_topics(created, operation_timeout=30).values():
            future.result(timeout=30)


@pytest.fixture
def new_group(
    request: pytest.FixtureRequest, kafka_bootstrap: str
) -> Iterator[Callable[[], str]]:
    """Factory: a unique consumer group id; the group is deleted after the test (if it exists)."""
    names: list[str] = []

    def make() -> str:
        names.append(_unique(request, "group"))
        return names[-1]

    yield make
    if names:
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.delete_consumer_groups(names, request_timeout=30).values():
            # A group that never committed does not exist: nothing to delete, not an error.
            with contextlib.suppress(KafkaException):
                future.result(timeout=30)


@pytest.fixture
def new_index(
    request: pytest.FixtureRequest, opensearch: OpenSearch
) -> Iterator[Callable[[], str]]:
    """Factory: a unique index name (created by the test as it needs); deleted after the test."""
    names: list[str] = []

    def make() -> str:
        names.append(_unique(request, "test"))
        return names[-1]

    yield make
    for name in names:
        opensearch.indices.delete(index=name, ignore_unavailable=True)
