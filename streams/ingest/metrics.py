"""The receiver's counters and their Prometheus view. Every count is in lines, however many
lines a Kafka record holds (see :mod:`streams.ingest.pack`).

The hot path adds to plain ints and dicts (no locks, no label lookups per line); a custom
collector turns them into Prometheus families when scraped. Appliance labels are capped
(:data:`MAX_APPLIANCES`): names beyond the cap are counted under ``_other`` so a flood of
garbage headers cannot blow up the series count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

MAX_APPLIANCES = 1000
OTHER = "_other"


@dataclass
class IngestCounters:
    """Everything the receiver counts. ``lines``/``sizes`` are keyed by (transport, appliance)."""

    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    sizes: dict[tuple[str, str], int] = field(default_factory=dict)
    spooled: dict[str, int] = field(default_factory=dict)
    """Lines written to the spool, by reason (``backpressure``, ``delivery_failed``,
    ``shutdown``, ``queue_full``)."""
    unspooled: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    """Lines lost on purpose, by reason (``overlong``, ``spool_full``, ``rejected``,
    ``spool_corrupt``: for a damaged spool record, the lines its header claims)."""
    framing_errors: int = 0
    empty_frames: int = 0
    connections: int = 0
    connections_total: int = 0
    paused_connections: int = 0
    _appliances: set[str] = field(default_factory=set)

    def label(self, appliance: str) -> str:
        """The appliance label to count under (capped)."""
        if appliance in self._appliances:
            return appliance
        if len(self._appliances) >= MAX_APPLIANCES:
            return OTHER
        self._appliances.add(appliance)
        return appliance

    def add_in(self, transport: str, per_appliance: dict[bytes, list[int]]) -> None:
        """Add one batch of received lines: ``{appliance: [lines, bytes]}``."""
        for key, (n_lines, n_bytes) in per_appliance.items():
            label = (transport, self.label(key.decode("ascii", "replace")))
            self.lines[label] = self.lines.get(label, 0) + n_lines
            self.sizes[label] = self.sizes.get(label, 0) + n_bytes

    def add_spooled(self, reason: str, n: int = 1) -> None:
        self.spooled[reason] = self.spooled.get(reason, 0) + n

    def add_dropped(self, reason: str, n: int = 1) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    def total_in(self) -> int:
        return sum(self.lines.values())


class IngestCollector(Collector):
    """Prometheus view of :class:`IngestCounters` plus live gauges read at scrape time."""

    def __init__(self, counters: IngestCounters, *, delivered: Callable[[], int],
                 failed: Callable[[], int], queue_depth: Callable[[], int],
                 spool_bytes: Callable[[], int]) -> None:
        self._c = counters
        self._delivered = delivered
        self._failed = failed
        self._depth = queue_depth
        self._spool_bytes = spool_bytes

    def collect(self) -> Iterator[Metric]:
        c = self._c
        lines = CounterMetricFamily("esatrack_ingest_lines", "Lines received",
                                    labels=["transport", "appliance"])
        size = CounterMetricFamily("esatrack_ingest_bytes", "Bytes of lines received",
                                   labels=["transport", "appliance"])
        for (transport, appliance), n in sorted(c.lines.items()):
            lines.add_metric([transport, appliance], n)
            size.add_metric([transport, appliance], c.sizes.get((transport, appliance), 0))
        yield lines
        yield size
        yield CounterMetricFamily("esatrack_ingest_published", "Lines acknowledged by Kafka",
                                  value=self._delivered())
        yield CounterMetricFamily("esatrack_ingest_delivery_errors",
                                  "Lines whose delivery Kafka refused or that timed out "
                                  "(spooled, or dropped as rejected)",
                                  value=self._failed())
        spooled = CounterMetricFamily("esatrack_ingest_spooled", "Lines written to the spool",
                                      labels=["reason"])
        for reason, n in sorted(c.spooled.items()):
            spooled.add_metric([reason], n)
        yield spooled
        yield CounterMetricFamily("esatrack_ingest_unspooled",
                                  "Spooled lines Kafka acknowledged", value=c.unspooled)
        dropped = CounterMetricFamily("esatrack_ingest_dropped", "Lines lost on purpose",
                                      labels=["reason"])
        for reason, n in sorted(c.dropped.items()):
            dropped.add_metric([reason], n)
        yield dropped
        yield CounterMetricFamily("esatrack_ingest_framing_errors",
                                  "TCP streams whose octet count was broken (read on as LF)",
                                  value=c.framing_errors)
        yield CounterMetricFamily("esatrack_ingest_empty_frames", "Empty frames skipped",
                                  value=c.empty_frames)
        yield GaugeMetricFamily("esatrack_ingest_producer_queue",
                                "Lines held in memory: lingering before packing, or held by the "
                                "producers, not yet acknowledged or failed",
                                value=self._depth())
        yield GaugeMetricFamily("esatrack_ingest_spool_bytes", "Bytes waiting in the spool",
                                value=self._spool_bytes())
        yield GaugeMetricFamily("esatrack_ingest_tcp_connections", "Open TCP/TLS connections",
                                value=c.connections)
        yield GaugeMetricFamily("esatrack_ingest_tcp_paused",
                                "TCP/TLS connections not read because Kafka is behind",
                                value=c.paused_connections)
