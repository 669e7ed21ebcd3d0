"""The confluent-kafka producer of raw lines, built from the settings (never at import time).

Configured for no loss and good throughput: ``acks=all`` with idempotence (no duplicates or
reordering from retries), compression and batching (``linger.ms``), and the Java/aiokafka
partitioner (``murmur2_random``) so a key lands on the same partition whichever client wrote it.

A record's value is one raw line, or several lines of one appliance joined with LF
(:mod:`streams.ingest.pack`); everything here counts lines, not records. Every record carries
three headers beside its value:

- ``received_ms``: when its (first) line was read (milliseconds since the epoch, ASCII decimal);
- ``peer``: who sent them (``ip:port``; ``file:<name>`` for replay);
- ``transport``: ``udp``, ``tcp``, ``tls`` or ``file``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.ingest.spool import SpoolRecord
from streams.kafka_client import client_config
from streams.settings import Settings

Headers = list[tuple[str, str | bytes | None]]
DeliveryCallback = Callable[[KafkaError | None, Message], None]

H_RECEIVED = "received_ms"
H_PEER = "peer"
H_TRANSPORT = "transport"


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The raw-line producer's configuration (``extra`` adds or overrides librdkafka keys)."""
    config = client_config(settings)
    config.update({
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": settings.producer_compression,
        "linger.ms": settings.producer_linger_ms,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": settings.receiver_max_queued,
        "queue.buffering.max.kbytes": 1_048_576,
        "partitioner": "murmur2_random",
        "message.timeout.ms": int(settings.producer_delivery_timeout * 1000),
        "message.max.bytes": max(1_000_000, settings.max_line_bytes + 4096,
                                 settings.producer_pack_bytes + 4096),
    })
    config.update(extra)
    return config


def headers_for(received_ms: int, peer: bytes, transport: bytes) -> Headers:
    """The Kafka headers of one record (see the module docstring)."""
    return [(H_RECEIVED, str(received_ms).encode()), (H_PEER, peer), (H_TRANSPORT, transport)]


Origin = tuple[int, bytes, bytes]
"""(received_ms, peer, transport) of a record, kept by its delivery callback."""


def record_of(msg: Message, lines: int = 1, origin: Origin | None = None) -> SpoolRecord:
    """A produced message of ``lines`` lines back as a spool record (for a failed delivery).

    librdkafka reports a failed delivery without the record's headers (or timestamp), so what
    they said comes from ``origin`` when the caller kept it, else from whatever headers the
    report has (none from librdkafka today: receive time 0, peer and transport empty; only the
    failure-only reports of unpacked records, ``producer_pack_bytes`` 0, are in that case).
    """
    value, key = msg.value(), msg.key()
    if origin is None:
        found: dict[str, bytes] = {}
        raw = msg.headers() or []
        for name, hval in raw.items() if isinstance(raw, dict) else raw:
            found[name] = hval.encode() if isinstance(hval, str) else hval or b""
        origin = (int(found.get(H_RECEIVED) or 0), found.get(H_PEER, b""),
                  found.get(H_TRANSPORT, b""))
    received_ms, peer, transport = origin
    return SpoolRecord(value.encode() if isinstance(value, str) else value or b"",
                       key.encode() if isinstance(key, str) else key or b"",
                       received_ms, peer, transport, lines)


class BrokerState:
    """Whether Kafka looks reachable, shared by the producers of one process."""

    def __init__(self) -> None:
        self.down = False
        self.last_error: str | None = None


class RawProducer:
    """Produces raw lines to one topic; counts deliveries, in lines, and hands failed ones back.

    ``on_failed(record, error)`` is called (from :meth:`poll`/:meth:`flush`) for every record
    Kafka did not take, as a :class:`SpoolRecord` carrying its value and line count, so nothing
    is silently lost.

    A record holds one line unless it is produced with ``on_delivery=self.reporter(lines)``
    (:meth:`produce` does that for ``lines > 1``), which tells the delivery report how many
    lines it carries: :attr:`produced`, :attr:`failed`, :attr:`delivered` and :meth:`depth` are
    all counted in lines, exactly.

    With ``report_success=False`` librdkafka reports failures only (``delivery.report.only.error``):
    a success costs no Python callback, which is most of the per-record cost at 100k records/s.
    Acknowledged lines are then counted as produced - failed - still queued, which needs every
    record to hold **one line** (use it only without packing); it is exact once the queue is
    empty and never counts a line that may still fail (a lower bound).
    """

    def __init__(self, settings: Settings, topic: str,
                 on_failed: Callable[[SpoolRecord, KafkaError], None],
                 state: BrokerState | None = None, *, report_success: bool = True,
                 **extra: Any) -> None:
        self.topic = topic
        self.state = state or BrokerState()
        self._on_failed = on_failed
        self._report_success = report_success
        self._acked = 0
        self._last_acked = 0
        self.produced = 0
        """Lines handed to librdkafka (hot loops using :attr:`raw_produce` add theirs)."""
        self.failed = 0
        """Lines whose delivery failed (each handed to ``on_failed``)."""
        # librdkafka's own log lines go through logging (served by poll), not straight to stderr.
        config = producer_config(settings, on_delivery=self.report, error_cb=self._error,
                                 logger=logging.getLogger("streams.ingest.kafka"), **extra)
        if not report_success:
            config["delivery.report.only.error"] = True
        self._producer = Producer(config)
        self._produce = self._producer.produce
        self.raw_produce = self._producer.produce
        """librdkafka's ``produce`` itself, for hot loops; the caller adds to :attr:`produced`
        and handles ``BufferError``."""

    @property
    def delivered(self) -> int:
        """Lines Kafka acknowledged."""
        if self._report_success:
            return self._acked
        # len() also counts librdkafka's pending events (errors, ...), so the difference can dip
        # below the true count for a moment: keep the counter monotonic and never negative.
        self._acked = max(self._acked, self.produced - self.failed - len(self._producer))
        return self._acked

    @property
    def broker_down(self) -> bool:
        return self.state.down

    @property
    def last_error(self) -> str | None:
        return self.state.last_error

    def report(self, err: KafkaError | None, msg: Message, lines: int = 1,
               origin: Origin | None = None) -> None:
        """Account for the delivery report of a record of ``lines`` lines (the default callback,
        for one line; :meth:`reporter` binds other counts; drains chain to it)."""
        if err is None:
            self._acked += lines
            self.state.down = False
            return
        self.failed += lines
        self.state.last_error = str(err)
        self._on_failed(record_of(msg, lines, origin), err)

    def reporter(self, lines: int, origin: Origin | None = None) -> DeliveryCallback:
        """The delivery callback of a record holding ``lines`` lines (``origin``: its receive
        time, peer and transport, kept for a failed delivery, which comes back without them)."""
        return functools.partial(self.report, lines=lines, origin=origin)

    def _error(self, err: KafkaError) -> None:
        self.state.last_error = str(err)
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.state.down = True

    def check_progress(self) -> None:
        """Mark the broker up again if lines were acknowledged since the last check."""
        acked = self.delivered
        if acked > self._last_acked:
            self.state.down = False
        self._last_acked = acked

    def produce(self, value: bytes, key: bytes, headers: Headers,
                on_delivery: DeliveryCallback | None = None, lines: int = 1) -> bool:
        """Queue one record of ``lines`` lines; False when the local queue is full (the caller
        keeps the record). A callback of the caller's must chain to :meth:`report` with
        ``lines``."""
        if on_delivery is None and lines != 1:
            on_delivery = self.reporter(lines)
        try:
            if on_delivery is None:
                self._produce(self.topic, value, key, headers=headers)
            else:
                self._produce(self.topic, value, key, headers=headers, on_delivery=on_delivery)
        except BufferError:
            return False
        self.produced += lines
        return True

    def reachable(self, timeout: float) -> bool:
        """True if a broker answers a metadata request for the topic (blocks up to ``timeout``)."""
        try:
            metadata = self._producer.list_topics(self.topic, timeout=timeout)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def depth(self) -> int:
        """Lines queued or in flight (not yet acknowledged or failed, as far as the delivery
        reports served so far tell)."""
        if self._report_success:
            return self.produced - self._acked - self.failed
        return len(self._producer)  # one line per record

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports; returns how many were served."""
        return int(self._producer.poll(timeout))

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for every queued record; returns how many records (not
        lines) are still queued."""
        return int(self._producer.flush(timeout))

    def purge(self) -> None:
        """Give up on what is still queued: each record comes back through ``on_failed``."""
        self._producer.purge(in_queue=True, in_flight=True, blocking=False)
        self._producer.poll(0)
        self._producer.flush(0)
