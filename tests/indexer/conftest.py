"""Fixtures for indexer tests against the real Kafka and OpenSearch: unique topics and group,
settings pointing at them, and a random past day whose esa-* indices no other test uses
(deleted afterwards)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from indexer_support import Pipeline, random_past_day
from opensearchpy import OpenSearch

from streams.opensearch.naming import KINDS, daily_index
from streams.settings import load_settings


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
