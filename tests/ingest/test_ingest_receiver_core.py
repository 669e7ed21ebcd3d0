"""The receiver's ingest path with a real librdkafka producer and no reachable broker: where each
line goes (producer queue, spool, drop counter), which key it gets, how lines are packed into
values, and that every count is in lines."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.ingest.receiver import Ports, Receiver
from streams.ingest.spool import SpoolRecord
from streams.settings import load_settings
from tests.ingest.ingest_helpers import free_port


def _receiver(tmp_path: Path, **overrides: object) -> Receiver:
    """A receiver without the packing linger: each read is packed and produced at once (the
    linger has tests of its own, test_ingest_linger_core)."""
    overrides.setdefault("producer_pack_linger_ms", 0)
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                             receiver_spool_dir=tmp_path / "spool", **overrides)
    return Receiver(settings, ports=Ports(), topic="t")


def _line(i: int, host: str = "esa1") -> bytes:
    return f"<22>Nov 19 09:16:38 {host} mail_logs: Info: MID {i}".encode()


def _drop(rx: Receiver) -> None:
    rx.producer.purge()
    rx.drainer.purge()


def _spooled(rx: Receiver) -> list[SpoolRecord]:
    """Every record in the spool, oldest first."""
    out: list[SpoolRecord] = []
    while (segment := rx.spool.take()) is not None:
        while not segment.exhausted:
            out += segment.read(1000)
        rx.spool.release(segment)
    return out


def test_full_producer_queue_spools_the_rest(tmp_path: Path) -> None:
    """Without packing, when the producer's queue is full the lines it refuses go to the spool,
    counted."""
    rx = _receiver(tmp_path, receiver_max_queued=1000, producer_pack_bytes=0)
    try:
        rx.ingest([_line(i) for i in range(1500)], b"192.0.2.1", b"192.0.2.1:514", b"tcp", False)
        assert rx.producer.produced == 1000
        assert rx.producer.depth() >= 1000
        assert rx.counters.spooled == {"queue_full": 500}
        assert rx.spool.records_appended == 500
        assert rx.counters.lines == {("tcp", "esa1"): 1500}
    finally:
        _drop(rx)


def test_full_producer_queue_spools_whole_packed_values(tmp_path: Path) -> None:
    """With packing, a value the full queue refuses is spooled whole; spooled and produced are
    counted in lines, and the spool holds each value with its line count."""
    lines = [_line(i) for i in range(3000)]  # 47-50 bytes each: two lines per 110-byte value
    rx = _receiver(tmp_path, receiver_max_queued=1000, producer_pack_bytes=110)
    try:
        rx.ingest(lines, b"192.0.2.1", b"192.0.2.1:514", b"tcp", False)
        records = _spooled(rx)
        assert len(records) == 500  # 1500 values, the queue takes 1000 of them
        assert all(r.lines == 2 and r.value.count(b"\n") == 1 for r in records)
        assert rx.producer.produced == 2000
        assert rx.producer.depth() == 2000
        assert rx.counters.spooled == {"queue_full": 1000}
        assert rx.counters.lines == {("tcp", "esa1"): 3000}
        assert sorted(line for r in records for line in r.value.split(b"\n")) == sorted(
            lines[2000:])
    finally:
        _drop(rx)


@pytest.mark.parametrize("pack", [0, 65536])
def test_spool_mode_writes_every_line_to_disk(tmp_path: Path, pack: int) -> None:
    """In spool mode (UDP while Kafka is down) nothing is produced; every line is spooled: one
    record per line without packing, one record of all ten with it."""
    rx = _receiver(tmp_path, producer_pack_bytes=pack)
    lines = [_line(i) for i in range(10)]
    try:
        rx.ingest(lines, b"192.0.2.1", b"192.0.2.1:514", b"udp", True)
        assert rx.producer.produced == 0
        assert rx.counters.spooled == {"backpressure": 10}
        records = _spooled(rx)
        if pack:
            assert [(r.value, r.lines) for r in records] == [(b"\n".join(lines), 10)]
        else:
            assert [(r.value, r.lines) for r in records] == [(line, 1) for line in lines]
        assert {(r.key, r.peer, r.transport) for r in records} == {
            (b"esa1", b"192.0.2.1:514", b"udp")}
    finally:
        _drop(rx)


def test_interleaved_appliances_are_packed_per_appliance(tmp_path: Path) -> None:
    """Lines of two appliances interleaved in one read become one value per appliance, each in
    its arrival order; a line holding LF goes alone, between its appliance's values."""
    rx = _receiver(tmp_path)
    a = [_line(i, "esa-a") for i in range(6)]
    b = [_line(i, "esa-b") for i in range(6)]
    multi = b"<22>Nov 19 09:16:38 esa-a mail_logs: Info: two\nrows"
    lines = [a[0], b[0], a[1], b[1], a[2], multi, b[2], a[3], a[4], b[3], b[4], a[5], b[5]]
    try:
        rx.ingest(lines, b"192.0.2.1", b"192.0.2.1:514", b"tcp", True)
        records = _spooled(rx)
        assert [(r.key, r.value, r.lines) for r in records] == [
            (b"esa-a", b"\n".join(a[:3]), 3), (b"esa-a", multi, 1),
            (b"esa-a", b"\n".join(a[3:]), 3), (b"esa-b", b"\n".join(b), 6)]
        assert rx.counters.spooled == {"backpressure": 13}
        assert rx.counters.lines == {("tcp", "esa-a"): 7, ("tcp", "esa-b"): 6}
        assert rx.counters.sizes[("tcp", "esa-a")] == sum(map(len, a)) + len(multi)
    finally:
        _drop(rx)


def test_mixed_appliances_and_host_less_lines_are_keyed_and_counted(tmp_path: Path) -> None:
    """Each line is keyed by its header's host, or by the peer address when it names none; the
    counters split lines and bytes by appliance."""
    rx = _receiver(tmp_path)
    lines = [_line(1, "esa1"), _line(2, "esa2"), b"<22>Nov 19 09:16:38 mail_logs: Info: MID 3",
             b"<13>Nov 19 09:16:40 relay1 <22>Nov 19 09:16:38 esa3 mail_logs: Info: MID 4"]
    try:
        rx.ingest(lines, b"192.0.2.1", b"192.0.2.1:514", b"tcp", True)
        segment = rx.spool.take()
        assert segment is not None
        assert [r.key for r in segment.read(10)] == [b"esa1", b"esa2", b"192.0.2.1", b"esa3"]
        assert rx.counters.lines == {("tcp", "esa1"): 1, ("tcp", "esa2"): 1,
                                     ("tcp", "192.0.2.1"): 1, ("tcp", "esa3"): 1}
        assert rx.counters.sizes[("tcp", "192.0.2.1")] == len(lines[2])
    finally:
        _drop(rx)


@pytest.mark.parametrize("pack", [0, 65536, 200])
def test_purged_lines_come_back_to_the_spool(tmp_path: Path, pack: int) -> None:
    """Records still queued when the producer gives up (shutdown) are written to the spool, each
    whole with its lines; counted in lines, nothing left queued or counted as delivered."""
    rx = _receiver(tmp_path, producer_pack_bytes=pack)
    rx._stopping = True  # what stop() sets before purging
    lines = [_line(i) for i in range(20)] + [_line(i, "esa2") for i in range(5)]
    rx.ingest(lines, b"192.0.2.1", b"192.0.2.1:514", b"tcp", False)
    assert rx.producer.produced == 25
    if pack:  # exact with packing; without, librdkafka's pending events count too
        assert rx.depth() == 25
    rx.producer.purge()
    rx.producer.flush(5)
    assert rx.counters.spooled == {"shutdown": 25}
    assert rx._spooled_at_shutdown == 25
    assert rx.producer.failed == 25
    assert rx.depth() == 0
    assert rx.producer.delivered == 0
    records = _spooled(rx)
    assert sum(r.lines for r in records) == 25
    assert all(r.lines == r.value.count(b"\n") + 1 for r in records)
    assert len(records) == {0: 25, 65536: 2, 200: 7}[pack]  # 200 B: 4 lines of 47-48 B
    by_key: dict[bytes, list[bytes]] = {}
    for record in records:  # purged records come back in any order: compare per appliance
        by_key.setdefault(record.key, []).extend(record.value.split(b"\n"))
    assert {key: sorted(got) for key, got in by_key.items()} == {
        b"esa1": sorted(lines[:20]), b"esa2": sorted(lines[20:])}


def test_timed_out_packed_values_are_spooled_in_lines(tmp_path: Path) -> None:
    """Values Kafka never acknowledges (delivery timeout) come back through the delivery
    reports and are spooled whole; failures and spooled lines are counted in lines."""
    rx = _receiver(tmp_path, producer_delivery_timeout=0.5)
    lines = [_line(i) for i in range(30)] + [b"<22>Nov 19 09:16:38 esa1 x: a\nb"]
    began = int(time.time() * 1000)
    try:
        rx.ingest(lines, b"192.0.2.1", b"192.0.2.1:514", b"tcp", False)
        assert rx.producer.flush(10) == 0
        assert rx.counters.spooled == {"delivery_failed": 31}
        assert rx.failed() == 31
        assert rx.delivered() == 0
        assert rx.depth() == 0
        records = _spooled(rx)
        assert [(r.value, r.lines) for r in records] == [
            (b"\n".join(lines[:30]), 30), (lines[30], 1)]
        # librdkafka reports a failed delivery without headers: what they said is kept anyway
        assert all(began <= r.received_ms <= int(time.time() * 1000) for r in records)
        assert [(r.peer, r.transport) for r in records] == [(b"192.0.2.1:514", b"tcp")] * 2
    finally:
        _drop(rx)
