"""Kafka goes away and comes back: the receiver loses nothing over TCP or UDP, even across its
own restart while Kafka is down. Runs against a Kafka of its own (other ports, own data dir),
started and stopped with the stack module, so the shared broker other tests use is undisturbed."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # the admin module re-exports it untyped

from streams.errors import StackError
from streams.settings import Settings, load_settings
from streams.stack import control
from tests.ingest.ingest_helpers import ReceiverProcess, free_port, read_topic

pytestmark = pytest.mark.integration


def _progress(message: str) -> None:
    print(f"[own kafka] {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="module")
def own_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A second single-node Kafka on free ports with its own data, stopped at the end."""
    settings = load_settings(stack_dir=tmp_path_factory.mktemp("own-kafka"),
                             kafka_port=free_port(), kafka_controller_port=free_port(),
                             kafka_heap="384m")
    services = control.services(settings, ["kafka"])
    try:
        control.up(settings, services, _progress)
    except StackError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot start a second Kafka (CI=true, not skipping): {exc}")
        pytest.skip(f"cannot start a second Kafka: {exc}")
    yield settings
    control.down(settings, services, _progress)


def _health(port: int) -> dict[str, Any]:
    """The receiver's health details (its status is 503 while Kafka is down)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return dict(json.loads(reply.read()))
    except urllib.error.HTTPError as exc:
        assert exc.code == 503
        return dict(json.loads(exc.read()))


def _metric(port: int, name: bytes) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    for line in body.splitlines():
        if line.startswith(name + b" "):
            return float(line.split()[-1])
    return 0.0


def _wait(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _lines(batch: str, transport: str, n: int) -> list[bytes]:
    return [f"<22>Nov 19 09:16:38 esa-{transport} mail_logs: Info: MID {i} batch {batch}".encode()
            for i in range(n)]


def _send(rx: ReceiverProcess, tcp: list[bytes], udp: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", rx.tcp)) as sock:
        sock.sendall(b"".join(line + b"\n" for line in tcp))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i, line in enumerate(udp):
        sender.sendto(line, ("127.0.0.1", rx.udp))
        if i % 20 == 19:
            time.sleep(0.005)
    sender.close()


def test_outage_and_receiver_restart_lose_nothing(own_kafka: Settings, tmp_path: Path) -> None:
    """Lines sent before, during and after a Kafka outage, with a receiver restart in the middle
    of it, all reach Kafka once Kafka is back; the spool ends empty; an idle receiver's health
    follows Kafka down and up again."""
    bootstrap = f"127.0.0.1:{own_kafka.kafka_port}"
    topic = f"outage-{os.getpid()}-{int(time.time())}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    services = control.services(own_kafka, ["kafka"])
    metrics = free_port()
    env = {"ESATRACK_KAFKA_BOOTSTRAP": bootstrap, "ESATRACK_RECEIVER_BIND": "127.0.0.1",
           "ESATRACK_RECEIVER_SHUTDOWN_TIMEOUT": "3"}
    args = ["--topic", topic, "--udp-port", str(free_port(socket.SOCK_DGRAM)),
            "--tcp-port", str(free_port()), "--spool-dir", str(tmp_path / "spool"),
            "--metrics-port", str(metrics)]
    sent: list[bytes] = []

    rx = ReceiverProcess(env, args)
    try:
        batch = _lines("a", "tcp", 100), _lines("a", "udp", 100)
        _send(rx, *batch)
        sent += batch[0] + batch[1]
        _wait(lambda: _health(metrics)["published"] == 200, "the first lines to be published")

        control.down(own_kafka, services, _progress)
        _wait(lambda: _health(metrics)["kafka"] == "down", "the receiver to see Kafka down")
        batch = _lines("b", "tcp", 300), _lines("b", "udp", 300)
        _send(rx, *batch)
        sent += batch[0] + batch[1]
        _wait(lambda: _health(metrics)["lines_in"] == 800, "the outage lines to be read")
        assert _metric(metrics, b'esatrack_ingest_spooled_total{reason="backpressure"}') > 0
        output = rx.stop()
    finally:
        rx.kill()
    assert "spooled at shutdown" in output
    assert " 0 spooled at shutdown" not in output, output  # the TCP lines queued went to disk
    assert list((tmp_path / "spool").glob("*.spool")), "nothing on disk after the restart"

    rx = ReceiverProcess(env, args)
    try:
        batch = _lines("c", "tcp", 100), _lines("c", "udp", 100)
        _send(rx, *batch)
        sent += batch[0] + batch[1]
        control.up(own_kafka, services, _progress)

        records = read_topic(bootstrap, topic, len(sent), timeout=180, lines=True)
        counts = Counter(line for record in records for line in record.lines)
        missing = set(sent) - set(counts)
        assert not missing, f"{len(missing)} lines lost, e.g. {sorted(missing)[:3]}"
        assert set(counts) == set(sent), "lines changed"
        for record in records:  # packed per appliance: esa-tcp / esa-udp
            assert {line.split(b" ")[3] for line in record.lines} == {record.key}
        assert max(len(record.lines) for record in records) > 1, "nothing was packed"
        duplicates = sum(n - 1 for n in counts.values())
        print(f"outage: {len(sent)} lines sent, {len(records)} records, {duplicates} duplicates")
        _wait(lambda: _health(metrics)["spool_bytes"] == 0, "the spool to drain")
        # Counted in lines, whatever the records hold: this receiver read batch c (200 lines);
        # it published the outage's 600 spooled lines and its own: the TCP ones live, the UDP
        # ones through the spool (which was not empty when they came).
        health = _health(metrics)
        unspooled = _metric(metrics, b"esatrack_ingest_unspooled_total")
        assert health["producer_queue"] == 0
        assert health["lines_in"] == 200
        assert unspooled >= 600
        assert unspooled + 100 <= health["published"] <= unspooled + 200

        # An idle receiver sees Kafka come back too (no delivery would tell it: it probes).
        control.down(own_kafka, services, _progress)
        _wait(lambda: _health(metrics)["kafka"] == "down", "the idle receiver to see Kafka down")
        control.up(own_kafka, services, _progress)
        _wait(lambda: _health(metrics)["kafka"] == "up", "the idle receiver to see Kafka up")
        output = rx.stop()
    finally:
        rx.kill()
    assert "0 B in the spool" in output
