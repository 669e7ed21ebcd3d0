"""The syslog receiver: UDP, TCP and TLS listeners publishing lines to the raw topic.

One asyncio loop does everything; the hot path is ``data_received`` -> framing -> header read ->
packing -> ``Producer.produce`` with no awaits. Lines are packed per appliance into LF-separated
values of at most ``producer_pack_bytes`` (:mod:`streams.ingest.pack`), so Kafka and the workers
see few records instead of one per line. Every count (in, published, failed, spooled, dropped,
queued) is in lines, whatever the records hold.

The packing linger (``producer_pack_linger_ms``, with packing on): lines arriving at a steady
pace come 1-2 per read (one per UDP datagram), so packing one read at a time would still make
about one record per line. Instead each read's lines are appended to a buffer per (appliance,
peer, transport) -- one buffer per appliance *connection*, so a value's ``peer`` and
``transport`` headers stay exact and each connection's lines keep their order. A buffer is
produced as packed values when the next read would take it past ``producer_pack_bytes`` (the
buffer first, then the read's full values at once; the rest starts the buffer again) or when
its oldest line has waited the linger: one asyncio timer per non-empty buffer, armed when the
buffer starts (per buffer, never per line). A value's ``received_ms`` is the receive time of
its first line. Buffered lines count in the queue depth like queued ones. Linger 0 (or packing
off): each read is packed (or not) and produced at once.

Flow control and loss:

- The producer and the linger buffers together hold at most ``receiver_max_queued`` lines. Above
  half of that, TCP/TLS connections stop being read (the senders' TCP windows close: bounded
  memory, no loss); below a quarter they are read again.
- UDP cannot be paused: while the producer is behind, the broker is down, or the spool is not yet
  empty, datagrams go to the on-disk spool (FIFO), which a timer drains when Kafka keeps up; the
  lines of that peer still lingering in memory go there first, and a UDP buffer whose linger
  ends at such a time goes there too.
- A record Kafka does not take (timed out, refused for a retriable reason) comes back through
  the delivery report and is spooled whole, counted in its lines. Lines dropped on purpose
  (over-long, spool full) are counted.
- On stop (SIGTERM): listeners close, the partial last line of every connection is taken, every
  linger buffer is handed to the producer, the producer is flushed for
  ``receiver_shutdown_timeout`` seconds, and whatever is still queued is purged into the spool,
  which is fsynced. The next start drains it first.

The Kafka key is the appliance named in the syslog header (:func:`streams.ingest.header.appliance`);
when the header names none, the key is the **peer's IP address** (not ``default_host``): two
appliances sending host-less syslog must not share a key, since they reuse the same MIDs.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message

from streams.ingest.framing import FrameDecoder, strip_trailer
from streams.ingest.header import appliance_fast, appliance_slow
from streams.ingest.metrics import IngestCounters
from streams.ingest.pack import Packed, group_by_key, pack_lines
from streams.ingest.producer import BrokerState, Headers, Origin, RawProducer, headers_for
from streams.ingest.spool import Segment, Spool, SpoolRecord
from streams.settings import Settings

log = logging.getLogger(__name__)

_TICK = 0.05
_SYNC_EVERY = 1.0
_DRAIN_BATCH = 20_000
_UDP_RCVBUF = 16 * 1024 * 1024
_RETRY_CODES = frozenset({KafkaError._MSG_TIMED_OUT, KafkaError._PURGE_QUEUE,
                          KafkaError._PURGE_INFLIGHT, KafkaError._TIMED_OUT,
                          KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})
_SHUTDOWN_CODES = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})


@dataclass
class Ports:
    """Ports to listen on (0 = off) and the ones actually bound (for ephemeral ports)."""

    udp: int = 0
    tcp: int = 0
    tls: int = 0


@dataclass
class _Drain:
    segment: Segment
    produced: int = 0
    """Records of the segment handed to the drainer."""
    resolved: int = 0
    """Of those, records whose delivery was reported (either way)."""


class _Buffer:
    """Lines of one appliance from one peer and transport waiting for more (the linger)."""

    __slots__ = ("deadline", "handle", "key", "lines", "marks", "peer", "size", "transport")

    def __init__(self, key: bytes, peer: bytes, transport: bytes, *, lines: list[bytes],
                 size: int, received_ms: int, deadline: float) -> None:
        self.key = key
        self.peer = peer
        self.transport = transport
        self.lines = lines
        self.size = size
        """Bytes of the lines plus one per line: the length of the packed value + 1."""
        self.marks = [(0, received_ms)]
        """(index of a read's first line, its receive time) for each read with a new time."""
        self.deadline = deadline
        """Loop time at which the oldest line has waited the linger."""
        self.handle: asyncio.TimerHandle | None = None


@dataclass
class ShutdownReport:
    """What happened to the lines at stop (every count in lines)."""

    lines_in: int
    delivered: int
    spooled_at_shutdown: int
    spool_bytes: int
    dropped: dict[str, int] = field(default_factory=dict)


def _peer(transport: asyncio.BaseTransport) -> tuple[bytes, bytes]:
    """(ip, ip:port) of a connection's peer."""
    info = transport.get_extra_info("peername")
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]).encode(), f"{info[0]}:{info[1]}".encode()
    return b"unknown", b"unknown"


def tls_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """Server-side TLS context for RFC 5425 (TLS 1.2+; client certificates if a CA is given)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        context.load_verify_locations(str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class Receiver:
    """Listeners + producer + spool. Build, ``await start()``, then ``await stop()``."""

    def __init__(self, settings: Settings, *, ports: Ports, topic: str | None = None,
                 ssl_context: ssl.SSLContext | None = None, spool_dir: Path | None = None,
                 **producer_extra: Any) -> None:
        self.settings = settings
        self.topic = topic or settings.topic_raw
        self.requested = ports
        self.bound = Ports()
        self.ssl_context = ssl_context
        self.max_line = settings.max_line_bytes
        self.pack = settings.producer_pack_bytes
        self.linger = settings.producer_pack_linger_ms / 1000 if self.pack else 0.0
        """Seconds a line may wait for more lines of its appliance connection (0: none)."""
        self._buffers: dict[tuple[bytes, bytes, bytes], _Buffer] = {}
        self.buffered = 0
        """Lines waiting in the linger buffers."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.counters = IngestCounters()
        self.spool = Spool(spool_dir or settings.receiver_spool_dir,
                           settings.receiver_spool_max_bytes)
        self.kafka = BrokerState()
        # Live records: with packing, every delivery is reported (a record's lines are known only
        # to its report, and a report costs little per record of many lines); without, failures
        # only (fast at one line per record). Spooled records: every delivery reported, so a
        # segment is deleted only once all its records are acknowledged.
        self.producer = RawProducer(settings, self.topic, self._on_failed, self.kafka,
                                    report_success=self.pack > 0, **producer_extra)
        self.drainer = RawProducer(settings, self.topic, self._on_failed, self.kafka,
                                   report_success=True, **producer_extra)
        self._high = settings.receiver_max_queued // 2
        self._low = settings.receiver_max_queued // 4
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._connections: set[_StreamProtocol] = set()
        self._paused: set[_StreamProtocol] = set()
        self._drain: _Drain | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._probe: asyncio.Future[None] | None = None
        self._stopping = False
        self._spooled_at_shutdown = 0

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the listeners and start the timer (poll, resume, drain, fsync)."""
        loop = self._loop = asyncio.get_running_loop()
        host = self.settings.receiver_bind
        if self.requested.udp:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                 socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_RCVBUF)
            sock.bind((host, self.requested.udp))
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _DatagramProtocol(self), sock=sock)
            self._udp = transport
            self.bound.udp = sock.getsockname()[1]
        if self.requested.tcp:
            server = await loop.create_server(lambda: _StreamProtocol(self, b"tcp"),
                                              host, self.requested.tcp, reuse_address=True)
            self._servers.append(server)
            self.bound.tcp = server.sockets[0].getsockname()[1]
        if self.requested.tls:
            if self.ssl_context is None:
                raise ValueError("a TLS port needs an SSL context")
            server = await loop.create_server(lambda: _StreamProtocol(self, b"tls"),
                                              host, self.requested.tls, reuse_address=True,
                                              ssl=self.ssl_context)
            self._servers.append(server)
            self.bound.tls = server.sockets[0].getsockname()[1]
        self._tick_task = asyncio.create_task(self._ticker())

    async def stop(self) -> ShutdownReport:
        """Stop reading, flush Kafka for the configured time, spool what is left, fsync."""
        self._stopping = True
        for server in self._servers:
            server.close()
        if self._udp is not None:
            self._udp.close()
        for conn in list(self._connections):
            conn.take_rest()
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        self.flush_buffers()
        self.linger = 0.0  # a line read from now on (none should be) is produced at once
        deadline = time.monotonic() + self.settings.receiver_shutdown_timeout
        left = 0
        for producer in (self.producer, self.drainer):
            left += producer.flush(max(0.0, deadline - time.monotonic()))
        if left:
            log.warning("Kafka did not take %d lines within %.0f s; spooling them", self.depth(),
                        self.settings.receiver_shutdown_timeout)
            self.producer.purge()
            self.drainer.purge()
        self._finish_drain()
        self.spool.close()
        for server in self._servers:
            await server.wait_closed()
        return ShutdownReport(lines_in=self.counters.total_in(),
                              delivered=self.delivered(),
                              spooled_at_shutdown=self._spooled_at_shutdown,
                              spool_bytes=self.spool.bytes_used,
                              dropped=dict(self.counters.dropped))

    def _finish_drain(self) -> None:
        """Release the segment being drained, keeping its unread records in the spool."""
        drain, self._drain = self._drain, None
        if drain is None:
            return
        while not drain.segment.exhausted:
            for record in drain.segment.read(_DRAIN_BATCH):
                self.spool.append(record, force=True)
        self.spool.release(drain.segment)

    # --- hot path ------------------------------------------------------------------------
    def ingest(self, lines: list[bytes], fallback: bytes, peer: bytes, transport: bytes,
               to_spool: bool) -> None:
        """Publish (or spool) non-empty lines of at most ``max_line_bytes`` read from one peer.

        The hot path: one list comprehension for the keys, the lines grouped by key (no per-line
        work when they name one appliance), then either appended to the appliance connection's
        linger buffer (a dict lookup and a list extend per appliance) or packed into values and
        handed to ``produce`` in one tight loop of C calls; a full producer queue (BufferError)
        spools the record instead. Without packing (``producer_pack_bytes`` 0) each line is its
        own record, at once, as it always was.
        """
        received_ms = time.time_ns() // 1_000_000
        fast, slow = appliance_fast, appliance_slow
        keys = [m.group(1) if (m := fast(line)) else (slow(line) or fallback) for line in lines]
        groups = group_by_key(lines, keys)
        sizes = {key: [len(group), sum(map(len, group))] for key, group in groups.items()}
        if self.linger and not to_spool:
            spooled = self._linger(groups, sizes, received_ms, peer, transport)
        elif self.pack:
            # Spooling: what this peer's appliances still have lingering goes first.
            spooled = self._spool_buffers(groups, peer, transport) if self._buffers else 0
            for key, group in groups.items():
                spooled += self._produce_values(key, pack_lines(group, self.pack),
                                                received_ms=received_ms, peer=peer,
                                                transport=transport, to_spool=to_spool)
        else:
            headers = headers_for(received_ms, peer, transport)
            spooled = self._publish_lines(lines, keys, headers, received_ms=received_ms,
                                          peer=peer, transport=transport, to_spool=to_spool)
        if spooled:
            self.counters.add_spooled("backpressure" if to_spool else "queue_full", spooled)
        self.counters.add_in(transport.decode(), sizes)

    def _produce_values(self, key: bytes, packed: Packed, *, received_ms: int, peer: bytes,
                        transport: bytes, to_spool: bool) -> int:
        """Produce (or spool) packed values of one appliance's lines from one peer, the first
        read at ``received_ms``; returns lines spooled."""
        spooled = 0
        if to_spool:
            for value, count in packed:
                spooled += self._spool_record(
                    SpoolRecord(value, key, received_ms, peer, transport, count))
            return spooled
        headers = headers_for(received_ms, peer, transport)
        produce, topic, reporter = self.producer.raw_produce, self.topic, self.producer.reporter
        produced = 0
        origin = (received_ms, peer, transport)  # a failed delivery's report lacks the headers
        for value, count in packed:
            try:
                produce(topic, value, key, headers=headers, on_delivery=reporter(count, origin))
            except BufferError:  # the producer's queue is full: this record goes to disk
                spooled += self._spool_record(
                    SpoolRecord(value, key, received_ms, peer, transport, count))
            else:
                produced += count
        self.producer.produced += produced
        return spooled

    # --- the packing linger --------------------------------------------------------------
    def _linger(self, groups: dict[bytes, list[bytes]], sizes: dict[bytes, list[int]],
                received_ms: int, peer: bytes, transport: bytes) -> int:
        """Append each appliance's lines of one read to its buffer; produce a buffer the read
        would take past ``producer_pack_bytes``. Returns lines spooled (producer queue full)."""
        buffers = self._buffers
        room = self.pack + 1  # a buffer's size counts one byte per line: its value's length + 1
        spooled = 0
        for key, group in groups.items():
            count, nbytes = sizes[key]
            size = nbytes + count
            buf = buffers.get((key, peer, transport))
            if buf is not None:
                if buf.size + size <= room:  # the common case: it still fits
                    if buf.marks[-1][1] != received_ms:
                        buf.marks.append((len(buf.lines), received_ms))
                    buf.lines += group
                    buf.size += size
                    self.buffered += count
                    continue
                spooled += self._flush(buf, False)  # full: the older lines go first, as a value
            spooled += self._restart(buf, key, group, size=size, received_ms=received_ms,
                                     peer=peer, transport=transport)
        return spooled

    def _restart(self, buf: _Buffer | None, key: bytes, group: list[bytes], *, size: int,
                 received_ms: int, peer: bytes, transport: bytes) -> int:
        """Start the (empty or new) buffer of (key, peer, transport) with the lines of one read,
        producing at once the full values among them. Returns lines spooled."""
        spooled = 0
        if size > self.pack + 1:  # more than one value: the full ones go now
            packed = pack_lines(group, self.pack)
            value, count = packed[-1]
            keep = group[-count:] if len(value) < self.pack else []
            if keep:
                packed.pop()
            spooled = self._produce_values(key, packed, received_ms=received_ms, peer=peer,
                                           transport=transport, to_spool=False)
            if not keep:
                if buf is not None:
                    self._forget(buf)
                return spooled
            group, size = keep, sum(map(len, keep)) + len(keep)
        else:
            group = list(group)  # ours to extend
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger
        if buf is None:
            buf = _Buffer(key, peer, transport, lines=group, size=size, received_ms=received_ms,
                          deadline=deadline)
            buf.handle = loop.call_at(deadline, self._expire, buf)
            self._buffers[(key, peer, transport)] = buf
        else:  # emptied just now: its timer, due earlier, sets itself again when it fires
            buf.lines, buf.size, buf.marks, buf.deadline = group, size, [(0, received_ms)], deadline
        self.buffered += len(group)
        return spooled

    def _forget(self, buf: _Buffer) -> None:
        """Drop an (emptied) buffer and its timer."""
        if buf.handle is not None:
            buf.handle.cancel()
            buf.handle = None
        if self._buffers.get((buf.key, buf.peer, buf.transport)) is buf:
            del self._buffers[(buf.key, buf.peer, buf.transport)]

    def _flush(self, buf: _Buffer, to_spool: bool) -> int:
        """Produce (or spool) a buffer's lines as packed values and empty it; returns lines
        spooled. Each value's ``received_ms`` is the receive time of its first line."""
        lines, marks = buf.lines, buf.marks
        buf.lines, buf.size, buf.marks = [], 0, []
        self.buffered -= len(lines)
        packed = pack_lines(lines, self.pack)
        key, peer, transport = buf.key, buf.peer, buf.transport
        if len(packed) == 1 or len(marks) == 1:
            received_ms = marks[0][1]
            return self._produce_values(key, packed, received_ms=received_ms, peer=peer,
                                        transport=transport, to_spool=to_spool)
        # Several values (lines that travel alone) of lines read at several times.
        starts = [start for start, _ms in marks]
        spooled, first = 0, 0
        for value, count in packed:
            received_ms = marks[bisect.bisect_right(starts, first) - 1][1]
            spooled += self._produce_values(key, [(value, count)], received_ms=received_ms,
                                            peer=peer, transport=transport, to_spool=to_spool)
            first += count
        return spooled

    def _expire(self, buf: _Buffer) -> None:
        """A buffer's timer: produce it if its oldest line has waited the linger (a UDP buffer
        goes to the spool if datagrams do right now), else wait on."""
        buf.handle = None
        if self._buffers.get((buf.key, buf.peer, buf.transport)) is not buf or not buf.lines:
            return
        loop = self._loop
        assert loop is not None
        if buf.deadline - loop.time() > 0.001:  # refilled after a flush: its oldest is younger
            buf.handle = loop.call_at(buf.deadline, self._expire, buf)
            return
        del self._buffers[(buf.key, buf.peer, buf.transport)]
        to_spool = buf.transport == b"udp" and self.udp_to_spool()
        spooled = self._flush(buf, to_spool)
        if spooled:
            self.counters.add_spooled("backpressure" if to_spool else "queue_full", spooled)

    def _spool_buffers(self, groups: dict[bytes, list[bytes]], peer: bytes,
                       transport: bytes) -> int:
        """Spool the lingering lines of these appliances from this peer (their new lines are
        being spooled: the older ones go first). Returns lines spooled."""
        spooled = 0
        for key in groups:
            buf = self._buffers.get((key, peer, transport))
            if buf is not None:
                spooled += self._flush(buf, True)
                self._forget(buf)
        return spooled

    def flush_buffers(self) -> None:
        """Hand every linger buffer to the producer now (at stop, before Kafka is flushed)."""
        buffers, self._buffers = self._buffers, {}
        spooled = 0
        for buf in buffers.values():
            if buf.handle is not None:
                buf.handle.cancel()
                buf.handle = None
            spooled += self._flush(buf, False)
        if spooled:
            self.counters.add_spooled("queue_full", spooled)

    def _publish_lines(self, lines: list[bytes], keys: list[bytes], headers: Headers, *,
                       received_ms: int, peer: bytes, transport: bytes, to_spool: bool) -> int:
        """Produce (or spool) one record per line; returns lines spooled."""
        count = len(lines)
        spooled = 0
        if to_spool:
            for line, key in zip(lines, keys, strict=True):
                spooled += self._spool_record(SpoolRecord(line, key, received_ms, peer, transport))
            return spooled
        produce, topic = self.producer.raw_produce, self.topic
        start, refused = 0, 0
        while start < count:
            try:
                for pos in range(start, count):
                    produce(topic, lines[pos], keys[pos], headers=headers)
            except BufferError:  # the producer's queue is full: this line goes to disk
                refused += 1
                spooled += self._spool_record(
                    SpoolRecord(lines[pos], keys[pos], received_ms, peer, transport))
                start = pos + 1
            else:
                break
        self.producer.produced += count - refused
        return spooled

    def _spool_record(self, record: SpoolRecord) -> int:
        """Append to the spool: its lines if written, 0 if the spool is full (counted as
        dropped)."""
        if self.spool.append(record):
            return record.lines
        self.counters.add_dropped("spool_full", record.lines)
        return 0

    def depth(self) -> int:
        """Lines held in memory: lingering in the buffers or held by the producers (queued or
        in flight)."""
        return self.producer.depth() + self.drainer.depth() + self.buffered

    def delivered(self) -> int:
        """Lines Kafka acknowledged (live and from the spool)."""
        return self.producer.delivered + self.drainer.delivered

    def failed(self) -> int:
        return self.producer.failed + self.drainer.failed

    def congested(self) -> bool:
        """True while the buffers and producers hold more than they should (TCP pauses, UDP
        spools)."""
        return self.depth() >= self._high

    def udp_to_spool(self) -> bool:
        return bool(self.spool) or self.kafka.down or self.congested()

    def pause(self, conn: _StreamProtocol) -> None:
        if conn not in self._paused:
            conn.transport.pause_reading()
            self._paused.add(conn)
            self.counters.paused_connections = len(self._paused)

    # --- delivery failures and the spool -------------------------------------------------
    def _on_failed(self, record: SpoolRecord, err: KafkaError) -> None:
        code = err.code()
        lines = record.lines
        if code not in _RETRY_CODES and not err.retriable():
            log.error("Kafka refused a record of %d lines for good (%s); appliance %r", lines,
                      err, record.key.decode("ascii", "replace"))
            self.counters.add_dropped("rejected", lines)
            return
        reason = "shutdown" if code in _SHUTDOWN_CODES else "delivery_failed"
        if self.spool.append(record, force=self._stopping):
            self.counters.add_spooled(reason, lines)
            if self._stopping:
                self._spooled_at_shutdown += lines
        else:
            self.counters.add_dropped("spool_full", lines)

    def _on_drained(self, drain: _Drain, lines: int, origin: Origin, err: KafkaError | None,
                    msg: Message) -> None:
        self.drainer.report(err, msg, lines, origin)
        drain.resolved += 1
        if err is None:
            self.counters.unspooled += lines

    def _drain_some(self) -> None:
        room = self._low - self.depth()  # in lines
        if self.kafka.down:
            # Probe with a few lines at a time until a delivery succeeds again.
            room = 100 if self.drainer.depth() == 0 else 0
        if room <= 0:
            return
        drain = self._drain
        if drain is None:
            if not self.spool:
                return
            segment = self.spool.take()
            if segment is None:
                return
            drain = self._drain = _Drain(segment)
        if drain.segment.exhausted:
            if drain.resolved >= drain.produced:
                self.spool.release(drain.segment)
                self.counters.add_dropped("spool_corrupt", drain.segment.corrupt_lines)
                self._drain = None
            return
        for record in drain.segment.read(_DRAIN_BATCH, max_lines=room):
            value, key, received_ms, peer, transport, lines = record
            callback = functools.partial(self._on_drained, drain, lines,
                                         (received_ms, peer, transport))
            if not self.drainer.produce(value, key, headers_for(received_ms, peer, transport),
                                        on_delivery=callback, lines=lines):
                self.spool.append(record, force=True)  # queue full after all: keep it
                continue
            drain.produced += 1

    async def _ticker(self) -> None:
        last_sync = time.monotonic()
        while True:
            await asyncio.sleep(_TICK)
            self.producer.poll(0)
            self.drainer.poll(0)
            self.producer.check_progress()
            if self._paused and self.depth() <= self._low:
                for conn in list(self._paused):
                    conn.transport.resume_reading()
                self._paused.clear()
                self.counters.paused_connections = 0
            self._drain_some()
            now = time.monotonic()
            if now - last_sync >= _SYNC_EVERY:
                self.spool.sync()
                last_sync = now
                if self.kafka.down and not self.depth() and (
                        self._probe is None or self._probe.done()):
                    # Idle while Kafka was down: nothing would be delivered to tell us it is back.
                    self._probe = asyncio.ensure_future(
                        asyncio.get_running_loop().run_in_executor(None, self._probe_kafka))

    def _probe_kafka(self) -> None:
        """Ask the broker for the topic's metadata (in a thread); mark Kafka up if it answers."""
        if self.producer.reachable(timeout=2.0):
            self.kafka.down = False

    # --- status --------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details): unhealthy while the broker is down or lines are being dropped."""
        details = {
            "kafka": "down" if self.kafka.down else "up",
            "producer_queue": self.depth(),
            "spool_bytes": self.spool.bytes_used,
            "lines_in": self.counters.total_in(),
            "published": self.delivered(),
            "dropped": self.counters.dropped,
            "last_error": self.kafka.last_error,
            "listening": {"udp": self.bound.udp, "tcp": self.bound.tcp, "tls": self.bound.tls},
        }
        return not self.kafka.down, details


class _StreamProtocol(asyncio.Protocol):
    """One TCP or TLS connection: framing detected on its first bytes."""

    def __init__(self, receiver: Receiver, kind: bytes) -> None:
        self.rx = receiver
        self.kind = kind
        self.decoder = FrameDecoder(receiver.max_line)
        self.transport: asyncio.Transport
        self.fallback = b""
        self.peer = b""
        self._seen = (0, 0, 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fallback, self.peer = _peer(transport)
        self.rx._connections.add(self)
        self.rx.counters.connections = len(self.rx._connections)
        self.rx.counters.connections_total += 1
        if self.rx.congested():
            self.rx.pause(self)

    def data_received(self, data: bytes) -> None:
        lines = self.decoder.feed(data)
        if lines:
            self.rx.ingest(lines, self.fallback, self.peer, self.kind, False)
        self._count()
        if self.rx.congested():
            self.rx.pause(self)

    def _count(self) -> None:
        dec = self.decoder
        seen = (dec.dropped_overlong, dec.framing_errors, dec.empty)
        if seen != self._seen:
            counters = self.rx.counters
            counters.add_dropped("overlong", seen[0] - self._seen[0])
            counters.framing_errors += seen[1] - self._seen[1]
            counters.empty_frames += seen[2] - self._seen[2]
            self._seen = seen

    def take_rest(self) -> None:
        """Stop reading and publish the partial last line (it was read from the socket)."""
        with contextlib.suppress(RuntimeError):  # already closing
            self.transport.pause_reading()
        rest = self.decoder.finish()
        if rest:
            self.rx.ingest(rest, self.fallback, self.peer, self.kind, False)
        self._count()
        self.transport.close()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        rest = self.decoder.finish()
        if rest:
            self.rx.ingest(rest, self.fallback, self.peer, self.kind, False)
        self._count()
        self.rx._connections.discard(self)
        self.rx._paused.discard(self)
        self.rx.counters.connections = len(self.rx._connections)
        self.rx.counters.paused_connections = len(self.rx._paused)


class _DatagramProtocol(asyncio.DatagramProtocol):
    """UDP: one datagram is one line (a trailing LF/CRLF is dropped)."""

    def __init__(self, receiver: Receiver) -> None:
        self.rx = receiver
        self._peers: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        line = strip_trailer(data)
        if not line:
            self.rx.counters.empty_frames += 1
            return
        if len(line) > self.rx.max_line:
            self.rx.counters.add_dropped("overlong")
            return
        peer = self._peers.get(addr)
        if peer is None:
            if len(self._peers) > 10_000:
                self._peers.clear()
            peer = self._peers[addr] = (str(addr[0]).encode(), f"{addr[0]}:{addr[1]}".encode())
        self.rx.ingest([line], peer[0], peer[1], b"udp", self.rx.udp_to_spool())

    def error_received(self, exc: Exception) -> None:
        log.warning("UDP socket error: %s", exc)
