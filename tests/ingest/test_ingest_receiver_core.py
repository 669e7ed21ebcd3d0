"""The receiver's ingest path with a real librdkafka producer and no reachable broker: where each
line goes (producer queue, spool, drop counter) and which key it gets."""

from __future__ import annotations

from pathlib import Path

from streams.ingest.receiver import Ports, Receiver
from streams.settings import load_settings
from tests.ingest.ingest_helpers import free_port


def _receiver(tmp_path: Path, **overrides: object) -> Receiver:
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                             receiver_spool_dir=tmp_path / "spool", **overrides)
    return Receiver(settings, ports=Ports(), topic="t")


def _line(i: int, host: str = "esa1") -> bytes:
    return f"<22>Nov 19 09:16:38 {host} mail_logs: Info: MID {i}".encode()


def _drop(rx: Receiver) -> None:
    rx.producer.purge()
    rx.drainer.purge()


def test_full_producer_queue_spools_the_rest(tmp_path: Path) -> None:
    """When the producer's queue is full, the lines it refuses go to the spool, counted."""
    rx = _receiver(tmp_path, receiver_max_queued=1000)
    try:
        rx.ingest([_line(i) for i in range(1500)], b"192.0.2.1", b"192.0.2.1:514", b"tcp", False)
        assert rx.producer.produced == 1000
        assert rx.producer.depth() >= 1000
        assert rx.counters.spooled == {"queue_full": 500}
        assert rx.spool.records_appended == 500
        assert rx.counters.lines == {("tcp", "esa1"): 1500}
    finally:
        _drop(rx)


def test_spool_mode_writes_every_line_to_disk(tmp_path: Path) -> None:
    """In spool mode (UDP while Kafka is down) nothing is produced; every line is spooled."""
    rx = _receiver(tmp_path)
    try:
        rx.ingest([_line(i) for i in range(10)], b"192.0.2.1", b"192.0.2.1:514", b"udp", True)
        assert rx.producer.produced == 0
        assert rx.counters.spooled == {"backpressure": 10}
        segment = rx.spool.take()
        assert segment is not None
        records = segment.read(100)
        assert [r.value for r in records] == [_line(i) for i in range(10)]
        assert {(r.key, r.peer, r.transport) for r in records} == {
            (b"esa1", b"192.0.2.1:514", b"udp")}
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


def test_purged_lines_come_back_to_the_spool(tmp_path: Path) -> None:
    """Lines still queued when the producer gives up (shutdown) are written to the spool."""
    rx = _receiver(tmp_path)
    rx._stopping = True  # what stop() sets before purging
    rx.ingest([_line(i) for i in range(20)], b"192.0.2.1", b"192.0.2.1:514", b"tcp", False)
    assert rx.producer.produced == 20
    rx.producer.purge()
    rx.producer.flush(5)
    assert rx.counters.spooled == {"shutdown": 20}
    segment = rx.spool.take()
    assert segment is not None
    assert sorted(r.value for r in segment.read(100)) == sorted(_line(i) for i in range(20))
    assert rx.producer.delivered == 0
