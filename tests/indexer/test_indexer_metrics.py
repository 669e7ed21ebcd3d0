"""The indexer's metrics and health endpoint."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import orjson
import pytest

from streams.indexer.metrics import IndexerMetrics, MetricsServer


@pytest.fixture
def served() -> Iterator[tuple[IndexerMetrics, str]]:
    metrics = IndexerMetrics(stale_after=60)
    server = MetricsServer(metrics, port=0, host="127.0.0.1")
    server.start()
    yield metrics, f"http://127.0.0.1:{server.port}"
    server.stop()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def test_metrics_endpoint_exposes_counters(served: tuple[IndexerMetrics, str]) -> None:
    """/metrics shows indexed, dead-lettered, retries and lag with their labels."""
    metrics, base = served
    metrics.indexed.labels("messages").inc(3)
    metrics.dead_lettered.labels("messages", "index").inc()
    metrics.retries.labels("opensearch").inc(2)
    metrics.lag.labels("esa.messages", "0").set(17)
    status, body = get(base + "/metrics")
    text = body.decode()
    assert status == 200
    assert 'esatrack_indexer_docs_indexed_total{kind="messages"} 3.0' in text
    assert 'esatrack_indexer_docs_dead_lettered_total{kind="messages",stage="index"} 1.0' in text
    assert 'esatrack_indexer_retries_total{cause="opensearch"} 2.0' in text
    assert 'esatrack_indexer_consumer_lag{partition="0",topic="esa.messages"} 17.0' in text


def test_health_and_readiness(served: tuple[IndexerMetrics, str]) -> None:
    """Alive while the loop turns; ready only with partitions and no outage; stalled is 503."""
    metrics, base = served
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/readyz")[0] == 503  # nothing assigned yet
    metrics.assigned = 3
    assert get(base + "/readyz")[0] == 200
    metrics.outage = "opensearch: connection refused"
    status, body = get(base + "/readyz")
    assert status == 503
    assert orjson.loads(body)["outage"] == "opensearch: connection refused"
    metrics.heartbeat -= 120
    assert get(base + "/healthz")[0] == 503
    assert get(base + "/nope")[0] == 404
