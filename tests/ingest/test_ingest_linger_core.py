"""The receiver's packing linger without a broker: lines of one appliance connection wait in a
buffer until it would overflow ``producer_pack_bytes`` or its oldest line has waited the linger,
then go out as packed values (or to the spool when that is where lines go); every line stays
counted, in the queue depth while it waits.

Most tests record what ``produce`` is handed (a stand-in for librdkafka's ``produce`` that can
also refuse, as a full queue does); the stop and purge tests use the real producer, whose
records come back to the spool since no broker answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from streams.ingest.receiver import Ports, Receiver
from streams.ingest.spool import Spool, SpoolRecord
from streams.settings import load_settings
from tests.ingest.ingest_helpers import free_port

PEER = b"192.0.2.1:514"
IP = b"192.0.2.1"


class Produced:
    """Stands in for librdkafka's ``produce``: records (key, value, headers) in call order;
    raises BufferError while ``full`` is set, as librdkafka does with its queue full."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes, dict[str, bytes]]] = []
        self.full = False

    def __call__(self, topic: str, value: bytes, key: bytes, *,
                 headers: list[tuple[str, bytes]], on_delivery: object = None) -> None:
        if self.full:
            raise BufferError("Local: Queue full")
        self.records.append((key, value, dict(headers)))

    def values(self) -> list[bytes]:
        return [value for _key, value, _headers in self.records]


def _receiver(tmp_path: Path, **overrides: object) -> tuple[Receiver, Produced]:
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                             receiver_spool_dir=tmp_path / "spool", **overrides)
    rx = Receiver(settings, ports=Ports(), topic="t")
    produced = Produced()
    rx.producer.raw_produce = produced  # type: ignore[assignment]  # the stand-in, on purpose
    return rx, produced


def _run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def _line(i: int, host: str = "esa1") -> bytes:
    return f"<22>Nov 19 09:16:38 {host} mail_logs: Info: MID {i}".encode()


def _spooled(spool: Spool) -> list[SpoolRecord]:
    """Every record in the spool, oldest first."""
    out: list[SpoolRecord] = []
    while (segment := spool.take()) is not None:
        while not segment.exhausted:
            out += segment.read(1000)
        spool.release(segment)
    return out


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_reads_within_the_linger_become_one_value(tmp_path: Path) -> None:
    """Lines fed one read at a time (as at a steady pace, and as UDP always is) wait, counted in
    the queue depth, and come out as ONE value once the linger is over: its lines in order, its
    received_ms the first line's, its peer and transport those of the connection."""
    rx, produced = _receiver(tmp_path, producer_pack_linger_ms=100)
    lines = [_line(i) for i in range(40)]

    async def scenario() -> None:
        before = _now_ms()
        for i, line in enumerate(lines):
            rx.ingest([line], IP, PEER, b"udp", False)
            if i == 0:
                after = _now_ms()
            if i % 10 == 9:
                await asyncio.sleep(0.005)  # pauses shorter than the linger
        assert produced.records == []
        assert rx.buffered == 40
        assert rx.depth() == 40
        assert rx.health()[1]["producer_queue"] == 40
        await asyncio.sleep(0.3)
        assert [(k, v) for k, v, _h in produced.records] == [(b"esa1", b"\n".join(lines))]
        headers = produced.records[0][2]
        assert before <= int(headers["received_ms"]) <= after
        assert (headers["peer"], headers["transport"]) == (PEER, b"udp")
        assert rx.buffered == 0
        assert rx.producer.produced == 40
        assert rx.depth() == 40  # now queued in the producer, until Kafka acknowledges them
        assert rx.counters.lines == {("udp", "esa1"): 40}

    _run(scenario)


def test_the_timer_flushes_after_the_linger_not_before(tmp_path: Path) -> None:
    """A line waits the linger (counted from the oldest line), not less and not much more."""
    rx, produced = _receiver(tmp_path, producer_pack_linger_ms=200)

    async def scenario() -> None:
        rx.ingest([_line(1)], IP, PEER, b"tcp", False)
        await asyncio.sleep(0.1)
        rx.ingest([_line(2)], IP, PEER, b"tcp", False)  # does not push the deadline back
        await asyncio.sleep(0.05)
        assert produced.records == []
        await asyncio.sleep(0.15)  # 0.3 s after the first line
        assert produced.values() == [_line(1) + b"\n" + _line(2)]

    _run(scenario)


def test_a_full_buffer_is_produced_at_once(tmp_path: Path) -> None:
    """When the next read would take a buffer past producer_pack_bytes, the buffer goes out
    right away (no waiting), and the read starts the next one; a read holding more than a value
    has its full values produced at once (after the buffer, which goes out as it is) and only
    its last, partial value waits."""
    rx, produced = _receiver(tmp_path, producer_pack_bytes=110, producer_pack_linger_ms=1000)
    lines = [_line(i) for i in range(10, 40)]  # 48 bytes each: two to a 110-byte value

    async def scenario() -> None:
        rx.ingest([lines[0]], IP, PEER, b"tcp", False)
        rx.ingest([lines[1]], IP, PEER, b"tcp", False)
        assert produced.records == []
        rx.ingest([lines[2]], IP, PEER, b"tcp", False)
        assert produced.values() == [lines[0] + b"\n" + lines[1]]
        assert rx.buffered == 1
        rx.ingest(lines[3:30], IP, PEER, b"tcp", False)
        assert produced.values()[1:] == [lines[2]] + [
            b"\n".join(lines[i:i + 2]) for i in range(3, 29, 2)]
        assert rx.buffered == 1  # lines[29]: half a value, it waits
        assert rx.producer.produced == 29
        assert rx.depth() == 30
        assert all(len(value) <= 110 for value in produced.values())

    _run(scenario)


def test_a_buffer_started_again_waits_from_its_own_oldest_line(tmp_path: Path) -> None:
    """After a full buffer went out, the lines that start it again wait their own linger, not
    what was left of the previous lines' (the first timer, due earlier, does not take them)."""
    rx, produced = _receiver(tmp_path, producer_pack_bytes=110, producer_pack_linger_ms=200)
    lines = [_line(i) for i in range(10, 13)]

    async def scenario() -> None:
        rx.ingest([lines[0]], IP, PEER, b"tcp", False)
        await asyncio.sleep(0.12)
        rx.ingest([lines[1]], IP, PEER, b"tcp", False)
        rx.ingest([lines[2]], IP, PEER, b"tcp", False)  # full: the first two go now
        assert produced.values() == [lines[0] + b"\n" + lines[1]]
        await asyncio.sleep(0.14)  # past the first line's deadline, within the third's
        assert len(produced.records) == 1
        assert rx.buffered == 1
        await asyncio.sleep(0.2)
        assert produced.values()[1:] == [lines[2]]
        assert rx.buffered == 0

    _run(scenario)


def test_a_big_read_keeps_only_its_remainder(tmp_path: Path) -> None:
    """At 64 KiB, 3000 lines of one read: the full values go at once, the last partial value
    waits for the linger; every line arrives once, in order, and the counts match."""
    rx, produced = _receiver(tmp_path, producer_pack_linger_ms=50)
    lines = [_line(i) for i in range(3000)]

    async def scenario() -> None:
        rx.ingest(lines, IP, PEER, b"tcp", False)
        assert len(produced.records) == 2
        assert 0 < rx.buffered < 3000
        assert rx.producer.produced + rx.buffered == 3000
        await asyncio.sleep(0.2)
        assert len(produced.records) == 3
        assert b"\n".join(produced.values()).split(b"\n") == lines
        assert all(len(value) <= 65536 for value in produced.values())

    _run(scenario)


def test_buffers_are_per_appliance_and_connection(tmp_path: Path) -> None:
    """Two appliances on one connection, and one appliance on two connections: one value per
    (appliance, connection), each with its own peer and its lines in arrival order."""
    rx, produced = _receiver(tmp_path, producer_pack_linger_ms=50)
    other = b"192.0.2.1:600"

    async def scenario() -> None:
        for i in range(5):
            rx.ingest([_line(i, "esa-a"), _line(i, "esa-b")], IP, PEER, b"tcp", False)
            rx.ingest([_line(100 + i, "esa-a")], IP, other, b"tcp", False)
        await asyncio.sleep(0.2)
        got = {(key, headers["peer"]): value for key, value, headers in produced.records}
        assert got == {
            (b"esa-a", PEER): b"\n".join(_line(i, "esa-a") for i in range(5)),
            (b"esa-b", PEER): b"\n".join(_line(i, "esa-b") for i in range(5)),
            (b"esa-a", other): b"\n".join(_line(100 + i, "esa-a") for i in range(5)),
        }
        assert rx.counters.lines == {("tcp", "esa-a"): 10, ("tcp", "esa-b"): 5}

    _run(scenario)


def test_lines_that_travel_alone_keep_their_own_receive_time(tmp_path: Path) -> None:
    """A buffer holding a line with an LF is produced as several values; each value's
    received_ms is that of its own first line's read."""
    rx, produced = _receiver(tmp_path, producer_pack_linger_ms=300)
    two_rows = b"<22>Nov 19 09:16:38 esa1 x: two\nrows"
    reads = [[_line(1), _line(2)], [two_rows], [_line(3)], [_line(4)]]

    async def scenario() -> None:
        times = []
        for read in reads:
            times.append(_now_ms())
            rx.ingest(read, IP, PEER, b"tcp", False)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        assert produced.values() == [_line(1) + b"\n" + _line(2), two_rows,
                                     _line(3) + b"\n" + _line(4)]
        stamps = [int(headers["received_ms"]) for _k, _v, headers in produced.records]
        assert times[0] <= stamps[0] < times[1] <= stamps[1] < times[2] <= stamps[2] < times[3]

    _run(scenario)


def test_linger_zero_and_packing_off_produce_each_read_at_once(tmp_path: Path) -> None:
    """Linger 0: each read is one value, produced before ingest returns (the old shape). Packing
    off: one line per record at once, whatever the linger."""
    rx, produced = _receiver(tmp_path, producer_pack_linger_ms=0)
    rx.ingest([_line(1), _line(2)], IP, PEER, b"tcp", False)
    rx.ingest([_line(3)], IP, PEER, b"udp", False)
    assert produced.values() == [_line(1) + b"\n" + _line(2), _line(3)]
    assert rx.buffered == 0

    off, produced_off = _receiver(tmp_path / "off", producer_pack_bytes=0,
                                  producer_pack_linger_ms=500)
    assert off.linger == 0
    off.ingest([_line(1), _line(2)], IP, PEER, b"tcp", False)
    assert produced_off.values() == [_line(1), _line(2)]


def test_a_full_producer_queue_spools_the_buffer_counted(tmp_path: Path) -> None:
    """When the linger ends and the producer's queue is full, the buffer's value goes to the
    spool whole (queue_full), counted in lines; nothing stays counted as waiting."""
    rx, produced = _receiver(tmp_path, producer_pack_linger_ms=20)
    lines = [_line(i) for i in range(12)]

    async def scenario() -> None:
        for line in lines:
            rx.ingest([line], IP, PEER, b"tcp", False)
        produced.full = True
        await asyncio.sleep(0.1)
        assert produced.records == []
        assert rx.counters.spooled == {"queue_full": 12}
        assert rx.buffered == 0
        assert rx.depth() == 0
        assert [(r.value, r.lines, r.peer, r.transport) for r in _spooled(rx.spool)] == [
            (b"\n".join(lines), 12, PEER, b"tcp")]

    _run(scenario)


def test_udp_spooling_takes_the_lingering_lines_first(tmp_path: Path) -> None:
    """A datagram that must go to the spool (Kafka down or behind) takes its appliance
    connection's lingering lines there first, in order; a UDP buffer whose linger ends while
    datagrams go to the spool goes there too. All counted as backpressure, in lines."""
    rx, produced = _receiver(tmp_path, producer_pack_linger_ms=30)
    a = [_line(i, "esa-a") for i in range(5)]
    b = [_line(i, "esa-b") for i in range(3)]

    async def scenario() -> None:
        for line in [*a[:4], *b]:
            rx.ingest([line], IP, PEER, b"udp", False)
        assert rx.buffered == 7
        rx.ingest([a[4]], IP, PEER, b"udp", True)
        assert rx.buffered == 3  # esa-b's lines still wait
        rx.kafka.down = True  # datagrams go to the spool now
        assert rx.udp_to_spool()
        await asyncio.sleep(0.15)
        assert produced.records == []
        assert rx.buffered == 0
        assert [(r.key, r.value, r.lines) for r in _spooled(rx.spool)] == [
            (b"esa-a", b"\n".join(a[:4]), 4), (b"esa-a", a[4], 1), (b"esa-b", b"\n".join(b), 3)]
        assert rx.counters.spooled == {"backpressure": 8}
        assert rx.counters.lines == {("udp", "esa-a"): 5, ("udp", "esa-b"): 3}

    _run(scenario)


def test_waiting_lines_count_towards_backpressure(tmp_path: Path) -> None:
    """Lines waiting in buffers count in the depth that pauses TCP and spools UDP: memory stays
    bounded by receiver_max_queued, buffers included."""
    rx, produced = _receiver(tmp_path, receiver_max_queued=1000, producer_pack_linger_ms=1000)

    async def scenario() -> None:
        for i in range(499):
            rx.ingest([_line(i)], IP, PEER, b"tcp", False)
        assert not rx.congested()
        rx.ingest([_line(499)], IP, PEER, b"tcp", False)
        assert produced.records == []
        assert rx.depth() == 500
        assert rx.congested()
        assert rx.udp_to_spool()
        rx.flush_buffers()

    _run(scenario)


def test_stop_hands_every_buffer_to_the_producer_first(tmp_path: Path) -> None:
    """On stop, lines still lingering are produced before Kafka is flushed; with no broker they
    are then purged into the spool like everything queued: nothing lost, counted as spooled at
    shutdown, in lines (real librdkafka producer)."""
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                             receiver_spool_dir=tmp_path / "spool", producer_pack_linger_ms=1000,
                             receiver_shutdown_timeout=0)
    rx = Receiver(settings, ports=Ports(), topic="t")
    lines = [_line(i) for i in range(30)]
    udp = [_line(i, "esa-udp") for i in range(4)]

    async def scenario() -> None:
        for line in lines:
            rx.ingest([line], IP, PEER, b"tcp", False)
        for line in udp:
            rx.ingest([line], IP, b"192.0.2.1:777", b"udp", False)
        assert rx.depth() == 34
        assert rx.producer.produced == 0
        report = await rx.stop()
        assert report.lines_in == 34
        assert report.spooled_at_shutdown == 34
        assert rx.counters.spooled == {"shutdown": 34}
        assert rx.depth() == 0

    _run(scenario)
    spool = Spool(tmp_path / "spool", settings.receiver_spool_max_bytes)  # as the next start
    records = sorted((r.key, r.value, r.lines) for r in _spooled(spool))
    assert records == [(b"esa-udp", b"\n".join(udp), 4), (b"esa1", b"\n".join(lines), 30)]
