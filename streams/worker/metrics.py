"""The worker's Prometheus metrics, and its small health/metrics HTTP endpoint.

Each :class:`WorkerMetrics` has its own registry, so a test or a benchmark can build as many
as it likes. The endpoint (aiohttp, in the worker's own event loop) serves:

- ``/metrics``: the Prometheus text format;
- ``/healthz``: 200 while the event loop turns (liveness);
- ``/readyz``: 200 once the worker has partitions, its state is recovered and no rebalance
  is in progress, else 503 with the reason (readiness).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    """The counters and gauges one worker exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lines_in = Counter(
            "esatrack_worker_lines", "Raw lines consumed from esa.raw", registry=r
        )
        self.records_out = Counter(
            "esatrack_worker_records",
            "Records (and revisions) produced, by output topic",
            ["topic"],
            registry=r,
        )
        self.unknown_lines = Counter(
            "esatrack_worker_unknown_lines",
            "Lines the parser did not understand (sent to the dead-letter topic)",
            registry=r,
        )
        self.state_writes = Counter(
            "esatrack_worker_state_writes",
            "Changed state keys written to the table and its changelog",
            registry=r,
        )
        self.restored_keys = Counter(
            "esatrack_worker_restored_keys",
            "State keys loaded from the table into an engine after an assignment",
            registry=r,
        )
        self.open_messages = Gauge(
            "esatrack_worker_open_messages", "Messages not yet finished or expired", registry=r
        )
        self.open_connections = Gauge(
            "esatrack_worker_open_connections",
            "Connections not yet closed or expired",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "esatrack_worker_consumer_lag",
            "Lines on esa.raw not yet processed, by partition",
            ["partition"],
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "esatrack_worker_assigned_partitions",
            "esa.raw partitions this worker processes",
            registry=r,
        )
        self.processing_latency = Histogram(
            "esatrack_worker_processing_latency_seconds",
            "From a line's Kafka timestamp to its batch's outputs handed to the producer "
            "(observed once per batch, for the batch's oldest line)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "esatrack_worker_batch_lines",
            "Lines per processing part (their records and state produced and acknowledged "
            "together; a batch of packed Kafka records is split at ESATRACK_WORKER_BATCH_LINES)",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000),
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of this worker's metrics."""
        return generate_latest(self.registry)


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the worker is ready, and if not, why."""

    ready: bool
    reason: str = ""


def health_app(metrics: WorkerMetrics, readiness: Callable[[], Readiness]) -> web.Application:
    """The aiohttp application serving ``/metrics``, ``/healthz`` and ``/readyz``."""

    async def serve_metrics(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def serve_health(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def serve_ready(_request: web.Request) -> web.Response:
        state = readiness()
        if state.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready: {state.reason}\n")

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", serve_health)
    app.router.add_get("/readyz", serve_ready)
    return app


class HealthServer:
    """Runs :func:`health_app` on a port of the current event loop."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port

    async def start(self) -> None:
        """Bind and serve."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()

    async def stop(self) -> None:
        """Stop serving and release the port."""
        await self._runner.cleanup()
