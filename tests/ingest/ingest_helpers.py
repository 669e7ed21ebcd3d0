"""Helpers for the ingest tests: a real `esatrack receive` process, a reader of a topic, ports."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free right now on 127.0.0.1 for the given socket type."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    @property
    def lines(self) -> list[bytes]:
        """The lines of the value as a consumer of esa.raw reads them: split on LF."""
        return self.value.split(b"\n")


def lines_by_key(records: list[Record]) -> dict[bytes | None, list[bytes]]:
    """Each key's lines, values split on LF, in the order read (Kafka's order: one key is in one
    partition, and a partition is read in offset order)."""
    out: dict[bytes | None, list[bytes]] = {}
    for record in records:
        out.setdefault(record.key, []).extend(record.lines)
    return out


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60.0,
               settle: float = 1.0, *, lines: bool = False) -> list[Record]:
    """Every record of ``topic`` from the start, waiting until ``expected`` records (``lines``:
    LF-separated lines in their values) arrived (or timeout), then ``settle`` s more so that
    extra (duplicate) records would show up too."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        partitions = list(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Record] = []
        seen = 0
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if seen >= expected and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() > settle_until:
                break
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                continue  # e.g. partition EOF / topic not yet there: keep polling
            raw = message.headers() or []
            headers = {name: value if isinstance(value, bytes) else str(value or "").encode()
                       for name, value in (raw.items() if isinstance(raw, dict) else raw)}
            key, value = message.key(), message.value()
            records.append(Record(key.encode() if isinstance(key, str) else key,
                                  value.encode() if isinstance(value, str) else value or b"",
                                  headers))
            seen += records[-1].value.count(b"\n") + 1 if lines else 1
        return records
    finally:
        consumer.close()


class ReceiverProcess:
    """`esatrack receive` in a child process, configured through ESATRACK_* variables."""

    def __init__(self, env: dict[str, str], args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "receive", *args],
            env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.udp = self.tcp = self.tls = 0
        self._wait_listening()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.output.append(line)
            self.lines.put(line)

    def _wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            found = re.search(r"listening udp=(\d+) tcp=(\d+) tls=(\d+)", line)
            if found:
                self.udp, self.tcp, self.tls = (int(g) for g in found.groups())
                return
        self.proc.kill()
        pytest.fail("esatrack receive did not start:\n" + "\n".join(self.output))

    def stop(self, timeout: float = 60.0) -> str:
        """SIGTERM, wait for a clean exit; the whole stderr."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("esatrack receive did not stop on SIGTERM:\n" + "\n".join(self.output))
        time.sleep(0.2)  # let the pump thread take the last lines
        text = "\n".join(self.output)
        assert code == 0, text
        return text

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1, made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key
