"""Prometheus metrics and the health endpoint of the indexer.

One registry per indexer (tests build several). The HTTP server answers ``/metrics``
(Prometheus text), ``/healthz`` (liveness: the consume loop turned recently) and ``/readyz``
(readiness: partitions assigned and OpenSearch reachable).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest


class IndexerMetrics:
    """The indexer's counters and gauges, plus the state the health endpoint reports."""

    def __init__(self, stale_after: float = 120.0) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.indexed = Counter("esatrack_indexer_docs_indexed", "Documents OpenSearch stored",
                               ["kind"], registry=reg)
        self.applied = Counter("esatrack_indexer_docs_already_applied",
                               "Documents skipped as already stored (same or newer revision, "
                               "redelivered raw line)", ["kind"], registry=reg)
        self.dead_lettered = Counter("esatrack_indexer_docs_dead_lettered",
                                     "Records sent to the dead-letter topic", ["kind", "stage"],
                                     registry=reg)
        self.retries = Counter("esatrack_indexer_retries",
                               "Attempts retried after a failure", ["cause"], registry=reg)
        self.batch_seconds = Histogram("esatrack_indexer_batch_seconds",
                                       "Time from batch start to commit",
                                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                                       registry=reg)
        self.lag = Gauge("esatrack_indexer_consumer_lag", "Messages behind the high watermark",
                         ["topic", "partition"], registry=reg)
        self.last_commit = Gauge("esatrack_indexer_last_commit_timestamp_seconds",
                                 "Unix time of the last offset commit", registry=reg)
        self.stale_after = stale_after
        self.heartbeat = time.monotonic()
        self.assigned = 0
        self.outage: str | None = None

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def health(self) -> tuple[int, dict[str, Any]]:
        age = time.monotonic() - self.heartbeat
        alive = age < self.stale_after
        return (200 if alive else 503), {"status": "ok" if alive else "stalled",
                                         "loop_age_seconds": round(age, 3), "outage": self.outage}

    def readiness(self) -> tuple[int, dict[str, Any]]:
        ready = self.assigned > 0 and self.outage is None
        return (200 if ready else 503), {"ready": ready, "assigned_partitions": self.assigned,
                                         "outage": self.outage}


class MetricsServer:
    """A small threaded HTTP server for the metrics and health endpoints."""

    def __init__(self, metrics: IndexerMetrics, port: int, host: str = "0.0.0.0") -> None:
        self.metrics = metrics
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.respond(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="indexer-metrics",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def respond(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            status, body, ctype = 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST
        elif path in ("/healthz", "/readyz"):
            status, data = (self.metrics.health() if path == "/healthz"
                            else self.metrics.readiness())
            body, ctype = orjson.dumps(data), "application/json"
        else:
            status, ctype = 404, "text/plain"
            body = b"not found: try /metrics, /healthz or /readyz\n"
        request.send_response(status)
        request.send_header("Content-Type", ctype)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

