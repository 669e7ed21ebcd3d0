"""With Kafka unreachable and a small spool, UDP lines beyond the spool are dropped and counted:
every line received is either on disk or in the drop counter, never silently gone."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.ingest.ingest_helpers import ReceiverProcess, free_port


def _get(port: int, path: str) -> bytes:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return bytes(reply.read())
    except urllib.error.HTTPError as exc:  # /healthz answers 503 while Kafka is down
        return bytes(exc.read())


def _sample(body: bytes, name: bytes) -> float:
    for line in body.splitlines():
        if line.startswith(name + b" "):
            return float(line.split()[-1])
    return 0.0


def test_spool_full_drops_are_counted(tmp_path: Path) -> None:
    """1000 UDP lines into a 64 KiB spool with no Kafka: spooled + dropped(spool_full) = 1000."""
    metrics = free_port()
    rx = ReceiverProcess(
        {"ESATRACK_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
         "ESATRACK_RECEIVER_BIND": "127.0.0.1", "ESATRACK_RECEIVER_SPOOL_MAX_BYTES": "65536",
         "ESATRACK_RECEIVER_SHUTDOWN_TIMEOUT": "1"},
        ["--topic", "never-created", "--udp-port", str(free_port(socket.SOCK_DGRAM)),
         "--tcp-port", "0", "--spool-dir", str(tmp_path / "spool"),
         "--metrics-port", str(metrics)])
    try:
        deadline = time.monotonic() + 30
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            health = json.loads(_get(metrics, "/healthz"))
            if health["kafka"] == "down":
                break
            time.sleep(0.2)
        assert health["kafka"] == "down", health
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(1000):
            sender.sendto(b"<22>Nov 19 09:16:38 esa1 mail_logs: Info: MID %d " % i + b"x" * 250,
                          ("127.0.0.1", rx.udp))
            if i % 20 == 19:
                time.sleep(0.005)
        sender.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if json.loads(_get(metrics, "/healthz"))["lines_in"] == 1000:
                break
            time.sleep(0.2)
        body = _get(metrics, "/metrics")
        spooled = _sample(body, b'esatrack_ingest_spooled_total{reason="backpressure"}')
        dropped = _sample(body, b'esatrack_ingest_dropped_total{reason="spool_full"}')
        assert spooled > 100
        assert dropped > 100
        assert spooled + dropped == 1000
        assert _sample(body, b"esatrack_ingest_spool_bytes") <= 65536
    finally:
        output = rx.stop()
        rx.kill()
    assert "1000 lines in, 0 published" in output
    assert "'spool_full'" in output
