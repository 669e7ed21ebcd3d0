"""Helpers of the worker tests: sample input, the offline reference, worker subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.ingest.header import appliance

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"


def sample_files() -> list[Path]:
    """The ESA sample logs, in a replay order both paths agree on.

    ``esatrack correlate`` resets a file's ``Time offset from UTC`` context at the end of the
    file; a stream has no file ends (real appliance files start with ``Begin Logfile``, which
    resets it; the samples are fragments without one). So files that carry such a header go
    last: then no context spills into another file on either path.
    """
    files = sorted((SAMPLES / "esa-text").glob("*.log"))
    files += sorted((SAMPLES / "esa-cef").glob("*.log"))
    with_context = [f for f in files if b"Time offset from UTC" in f.read_bytes()]
    return [f for f in files if f not in with_context] + with_context


def keyed_lines(files: Iterable[Path]) -> list[tuple[bytes, bytes]]:
    """``(appliance key, line)`` of every non-empty line, keyed as ``esatrack replay`` does."""
    out: list[tuple[bytes, bytes]] = []
    for path in files:
        for text in path.read_bytes().splitlines():
            line = text.rstrip(b"\r")
            if line:
                out.append((appliance(line) or b"esa", line))
    return out


def offline_records(files: Iterable[Path], *, grace: float = 0.0) -> dict[str, dict[str, Any]]:
    """Final revision by id from ``esatrack correlate`` over the files."""
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "correlate", "--grace", str(grace),
         *map(str, files)],
        capture_output=True, check=True, cwd=REPO, timeout=120,
    )
    records: dict[str, dict[str, Any]] = {}
    for line in result.stdout.splitlines():
        record = orjson.loads(line)
        records[record["id"]] = record
    return records


def without_revision(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record minus its revision counter (replays may legitimately add revisions)."""
    return {k: v for k, v in record.items() if k != "revision"}


def untimed(record: Mapping[str, Any]) -> bool:
    """A record none of whose lines had a time: only an end-of-input flush emits it."""
    return record.get("updated_at") is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerEnv:
    """The settings (as ``ESATRACK_*`` variables) of the workers of one test."""

    bootstrap: str
    raw: str
    messages: str
    connections: str
    unparsed: str
    group: str
    partitions: int = 3
    grace: float = 0.0
    tick: float = 0.5
    extra: dict[str, str] = field(default_factory=dict)
    """More ``ESATRACK_*`` variables of this test's workers."""

    def variables(self, state_dir: Path, metrics_port: int) -> dict[str, str]:
        return {
            "ESATRACK_KAFKA_BOOTSTRAP": self.bootstrap,
            "ESATRACK_TOPIC_RAW": self.raw,
            "ESATRACK_TOPIC_MESSAGES": self.messages,
            "ESATRACK_TOPIC_CONNECTIONS": self.connections,
            "ESATRACK_TOPIC_UNPARSED": self.unparsed,
            "ESATRACK_TOPIC_PARTITIONS": str(self.partitions),
            "ESATRACK_WORKER_GROUP": self.group,
            "ESATRACK_GRACE_SECONDS": str(self.grace),
            "ESATRACK_WORKER_TICK_SECONDS": str(self.tick),
            "ESATRACK_STATE_DIR": str(state_dir),
            "ESATRACK_METRICS_PORT": str(metrics_port),
            **self.extra,
        }

    @property
    def changelog(self) -> str:
        return f"{self.group}-correlation-changelog"


class WorkerProcess:
    """A real ``esatrack worker`` subprocess, with its log in a file."""

    def __init__(self, env: WorkerEnv, state_dir: Path, log_path: Path) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.log_path = log_path
        variables = {**os.environ, **env.variables(state_dir, self.port)}
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            cwd=REPO, env=variables, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> tuple[int, str]:
        """GET a path of the worker's endpoint: (status, body); (0, reason) if it is down."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def metric(self, name: str) -> float:
        """The sum of one metric's samples (0 if absent)."""
        status, body = self.get("/metrics")
        if status != 200:
            return 0.0
        total = 0.0
        for line in body.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                if head == name or head.startswith(name + "{"):
                    total += float(value)
        return total

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until /readyz answers 200 (fails with the log tail if the worker died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.tail()}")
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.3)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.tail()}")

    def wait_lines(self, count: int, timeout: float = 90.0) -> None:
        """Until the worker counted ``count`` lines in."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metric("esatrack_worker_lines_total") >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        raise AssertionError(f"worker did not reach {count} lines:\n{self.tail()}")

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: the clean stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._log.close()
        return int(self.proc.returncode)

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def produce(bootstrap: str, topic: str, pairs: Iterable[tuple[bytes, bytes]]) -> int:
    """Produce ``(key, line)`` pairs in order (idempotent producer); the count acknowledged."""
    from confluent_kafka import Producer  # noqa: PLC0415  # only the Kafka tests need it

    acked = 0

    def delivered(err: Any, _msg: Any) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 5, "compression.type": "lz4"})
    for key, line in pairs:
        while True:
            try:
                producer.produce(topic, line, key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    return acked


def read_topic(bootstrap: str, topics: list[str], *, idle: float = 3.0,
               timeout: float = 120.0) -> list[tuple[str, int, bytes | None, bytes | None]]:
    """Everything on the topics, as ``(topic, partition, key, value)``, read until idle."""
    from confluent_kafka import Consumer  # noqa: PLC0415  # only the Kafka tests need it

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(topics)
    out: list[tuple[str, int, bytes | None, bytes | None]] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - last < idle:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            last = time.monotonic()
            out.append((str(message.topic()), int(message.partition() or 0), message.key(),
                        message.value()))
    finally:
        consumer.close()
    return out


def final_records(rows: Iterable[tuple[str, int, bytes | None, bytes | None]]
                  ) -> dict[str, dict[str, Any]]:
    """The last revision of each record id (the highest revision wins, as at the sink)."""
    records: dict[str, dict[str, Any]] = {}
    for _topic, _partition, key, value in rows:
        assert value is not None and key is not None
        record = orjson.loads(value)
        assert key.decode() == record["id"]
        held = records.get(record["id"])
        if held is None or record["revision"] >= held["revision"]:
            records[record["id"]] = record
    return records


def wait_for_records(bootstrap: str, env: WorkerEnv, expected: Mapping[str, Mapping[str, Any]],
                     timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    """Read the output topics until every expected id is there with its final content."""
    deadline = time.monotonic() + timeout
    want = {rid: without_revision(r) for rid, r in expected.items()}
    got: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        got = final_records(read_topic(bootstrap, [env.messages, env.connections], idle=2.0))
        if all(rid in got and without_revision(got[rid]) == rec for rid, rec in want.items()):
            return got
        time.sleep(1.0)
    return got
