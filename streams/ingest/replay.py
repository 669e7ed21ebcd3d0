"""Backfill: publish appliance log files to the raw topic, counting every line to the end.

Files are appliance pushes (``mail_logs.@20250101T000000.s``: ``Begin Logfile``, ``Version``,
``Time offset`` then ``<date> Info: ...`` lines), plain or gzip (detected by content, not name),
or syslog captures (one syslog line per line). Each line is published unchanged (without its
LF/CRLF), keyed by ``--host`` if given, else the line's syslog host field, else
``settings.default_host``. Empty lines carry nothing and are skipped (and counted).

Lines are packed as the receiver packs them (:mod:`streams.ingest.pack`): the file is read in
chunks of about :data:`CHUNK_BYTES` (or :data:`CHUNK_SECONDS` of reading when rate-limited), and
each chunk's lines of one appliance are joined with LF into values of at most
``producer_pack_bytes`` (0: one line per record, in file order).

The count is strict and in lines: every non-empty line read must be acknowledged by Kafka, else
:meth:`Replayer.finish` reports the shortfall and the command exits non-zero.
"""

from __future__ import annotations

import functools
import gzip
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, Message, Producer

from streams.ingest.framing import strip_trailer
from streams.ingest.header import appliance
from streams.ingest.pack import group_by_key, pack_lines
from streams.ingest.producer import Headers, headers_for, producer_config
from streams.settings import Settings

_GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20
"""Bytes of lines read before they are packed and produced (each appliance's share of a chunk
fills whole values but its last)."""
CHUNK_SECONDS = 0.1
"""With ``--rate``, lines wait at most this long for their chunk to be produced."""


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
    """What happened to the lines (every count in lines, whatever the records hold)."""

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
        self.pack = settings.producer_pack_bytes
        self.counts = ReplayCounts()
        self.first_error: str | None = None
        self.limiter = RateLimiter(rate)
        self._producer = Producer(producer_config(settings, on_delivery=self._delivered,
                                                  **producer_extra))
        self._next_poll = 0

    def _delivered(self, err: KafkaError | None, _msg: Message, lines: int = 1) -> None:
        if err is None:
            self.counts.acknowledged += lines
        else:
            self.counts.failed += lines
            if self.first_error is None:
                self.first_error = str(err)

    def _keyed(self, reader: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
        """(line, key) of every line to publish, counting the lines read and skipped."""
        counts = self.counts
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
            yield line, key

    def _produce(self, value: bytes, key: bytes, headers: Headers, lines: int) -> None:
        """One record of ``lines`` lines, waiting while the local queue is full."""
        callback = None if lines == 1 else functools.partial(self._delivered, lines=lines)
        while True:
            try:
                if callback is None:
                    self._producer.produce(self.topic, value, key, headers=headers)
                else:
                    self._producer.produce(self.topic, value, key, headers=headers,
                                           on_delivery=callback)
                break
            except BufferError:  # the local queue is full: let Kafka catch up
                self._producer.poll(0.1)
        self.counts.produced += lines

    def publish_file(self, path: Path, progress: Callable[[Path, float], None]) -> None:
        """Publish every line of one file; ``progress(path, fraction_done)`` now and then."""
        reader, raw = open_log(path)
        size = max(1, path.stat().st_size)
        peer = f"file:{path.name}".encode()
        limiter = self.limiter
        next_report = 0.0

        def tick() -> None:
            nonlocal next_report
            if self.counts.produced >= self._next_poll:
                self._producer.poll(0)
                self._next_poll = self.counts.produced + 2000
                now = time.monotonic()
                if now >= next_report:
                    progress(path, raw.tell() / size)
                    next_report = now + 0.25

        try:
            if not self.pack:
                for line, key in self._keyed(reader):
                    self._produce(line, key, headers_for(time.time_ns() // 1_000_000, peer,
                                                         b"file"), 1)
                    limiter.wait()
                    tick()
            else:
                self._publish_packed(self._keyed(reader), peer, tick)
        finally:
            reader.close()
            raw.close()
        progress(path, 1.0)

    def _publish_packed(self, keyed: Iterator[tuple[bytes, bytes]], peer: bytes,
                        tick: Callable[[], None]) -> None:
        """Read ``keyed`` in chunks; produce each chunk's lines packed per appliance."""
        limiter = self.limiter
        timed = limiter.rate is not None
        lines: list[bytes] = []
        keys: list[bytes] = []
        size = 0
        started = time.monotonic()

        def flush() -> None:
            headers = headers_for(time.time_ns() // 1_000_000, peer, b"file")
            for key, group in group_by_key(lines, keys).items():
                for value, count in pack_lines(group, self.pack):
                    self._produce(value, key, headers, count)
            lines.clear()
            keys.clear()
            tick()

        try:
            for line, key in keyed:
                lines.append(line)
                keys.append(key)
                size += len(line) + 1
                limiter.wait()
                if size >= CHUNK_BYTES or (timed and time.monotonic() - started >= CHUNK_SECONDS):
                    flush()
                    size = 0
                    started = time.monotonic()
        finally:  # also when the file cannot be read to its end: what was read is published
            if lines:
                flush()

    def finish(self, progress: Callable[[], None], timeout: float | None = None) -> None:
        """Wait until every produced line is acknowledged or failed (or ``timeout`` s pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._producer):
            self._producer.flush(0.5)
            progress()
            if deadline is not None and time.monotonic() > deadline:
                break
