"""Backfill: publish appliance log files to the raw topic, counting every line to the end.

Files are appliance pushes (``mail_logs.@20250101T000000.s``: ``Begin Logfile``, ``Version``,
``Time offset`` then ``<date> Info: ...`` lines), plain or gzip (detected by content, not name),
or syslog captures (one syslog line per line). Each line is published unchanged (without its
LF/CRLF), keyed by ``--host`` if given, else the line's syslog host field, else
``settings.default_host``. Empty lines carry nothing and are skipped (and counted).

The count is strict: every non-empty line read must be acknowledged by Kafka, else
:meth:`Replayer.finish` reports the shortfall and the command exits non-zero.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, Message, Producer

from streams.ingest.framing import strip_trailer
from streams.ingest.header import appliance
from streams.ingest.producer import headers_for, producer_config
from streams.settings import Settings

_GZIP_MAGIC = b"\x1f\x8b"


def open_log(path: Path) -> tuple[gzip.GzipFile | BinaryIO, BinaryIO]:
    """(reader of the lines, the raw file for progress): gzip is detected by its magic bytes."""
    raw: BinaryIO = path.open("rb")
    if raw.read(2) == _GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    raw.seek(0)
    return raw, raw


def lines_of(reader: Iterable[bytes]) -> Iterator[bytes]:
    """Each line without its LF/CRLF (a last line without LF included)."""
    for raw in reader:
        yield strip_trailer(raw)


@dataclass
class ReplayCounts:
    read: int = 0
    empty: int = 0
    overlong: int = 0
    produced: int = 0
    acknowledged: int = 0
    failed: int = 0
    defaulted: int = 0
    """Lines keyed by ``default_host`` because neither ``--host`` nor the line named one."""
    unreadable_files: int = 0
    """Files that could not be read to the end (missing permission, corrupt gzip)."""

    @property
    def expected(self) -> int:
        """Lines that must be acknowledged for the replay to count as complete."""
        return self.read - self.empty

    def complete(self) -> bool:
        return (self.acknowledged == self.expected and not self.failed and not self.overlong
                and not self.unreadable_files)


class RateLimiter:
    """Keeps a loop at or below ``rate`` iterations a second (None: no limit)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._start = clock()
        self._count = 0

    def wait(self) -> None:
        """Call once per iteration; sleeps when ahead of schedule."""
        if self.rate is None:
            return
        self._count += 1
        due = self._start + self._count / self.rate
        ahead = due - self._clock()
        if ahead > 0.001:
            self._sleep(ahead)


class Replayer:
    """Publishes lines with strict accounting; ``progress(counts)`` is called now and then."""

    def __init__(self, settings: Settings, *, topic: str | None = None, host: str | None = None,
                 rate: float | None = None, **producer_extra: Any) -> None:
        self.settings = settings
        self.topic = topic or settings.topic_raw
        self.host = host.encode() if host else None
        self.default = settings.default_host.encode()
        self.max_line = settings.max_line_bytes
        self.counts = ReplayCounts()
        self.first_error: str | None = None
        self.limiter = RateLimiter(rate)
        self._producer = Producer(producer_config(settings, on_delivery=self._delivered,
                                                  **producer_extra))

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.counts.acknowledged += 1
        else:
            self.counts.failed += 1
            if self.first_error is None:
                self.first_error = str(err)

    def publish_file(self, path: Path, progress: Callable[[Path, float], None]) -> None:
        """Publish every line of one file; ``progress(path, fraction_done)`` now and then."""
        reader, raw = open_log(path)
        size = max(1, path.stat().st_size)
        peer = f"file:{path.name}".encode()
        counts = self.counts
        produce = self._producer.produce
        topic = self.topic
        limiter = self.limiter
        next_report = 0.0
        try:
            for line in lines_of(reader):
                counts.read += 1
                if not line:
                    counts.empty += 1
                    continue
                if len(line) > self.max_line:
                    counts.overlong += 1
                    continue
                key = self.host or appliance(line)
                if key is None:
                    key = self.default
                    counts.defaulted += 1
                headers = headers_for(time.time_ns() // 1_000_000, peer, b"file")
                while True:
                    try:
                        produce(topic, line, key, headers=headers)
                        break
                    except BufferError:  # the local queue is full: let Kafka catch up
                        self._producer.poll(0.1)
                counts.produced += 1
                limiter.wait()
                if counts.produced % 2000 == 0:
                    self._producer.poll(0)
                    now = time.monotonic()
                    if now >= next_report:
                        progress(path, raw.tell() / size)
                        next_report = now + 0.25
        finally:
            reader.close()
            raw.close()
        progress(path, 1.0)

    def finish(self, progress: Callable[[], None], timeout: float | None = None) -> None:
        """Wait until every produced line is acknowledged or failed (or ``timeout`` s pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._producer):
            self._producer.flush(0.5)
            progress()
            if deadline is not None and time.monotonic() > deadline:
                break
