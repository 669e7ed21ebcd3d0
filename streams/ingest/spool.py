"""A bounded, on-disk FIFO of Kafka records (values of one or more lines) waiting for Kafka.

The receiver writes here what it cannot hand to Kafka right now (UDP lines while Kafka is slow or
down, records whose delivery failed, what is still queued at shutdown) and drains it when Kafka
is back, producing each record's value unchanged. It is a directory of segment files, oldest
first. Each record is framed as

    CRC32(payload) u32 | len(payload) u32 | payload
    payload = received_ms i64 | lines u32 | len(key) u16 | len(peer) u16 | len(transport) u8
              | key | peer | transport | value

``lines`` is how many lines the value holds (several LF-separated ones when packed, see
:mod:`streams.ingest.pack`; 1 for a line that itself contains LF), so the receiver counts the
spool in lines.

A segment is deleted only after the caller says all of its records were delivered
(:meth:`Spool.release`); a crash in between replays the segment (at-least-once). A torn record at
the end of a segment (a crash during a write) fails its CRC: reading stops there and the loss is
counted in :attr:`Spool.corrupt_records` (records) and :attr:`Spool.corrupt_lines` (the line
count its unchecked header claims, at least 1). No Kafka, no event loop: plain file I/O,
unit-tested.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import BinaryIO, NamedTuple

_FRAME = struct.Struct("<II")
_META = struct.Struct("<qIHHB")
_LINES = struct.Struct("<I")
_LINES_AT = 8  # offset of ``lines`` in the payload
_SUFFIX = ".spool"


class SpoolRecord(NamedTuple):
    """One Kafka record's value (``lines`` lines) with what the record needs besides it."""

    value: bytes
    key: bytes
    received_ms: int
    peer: bytes
    transport: bytes
    lines: int = 1


def encode(record: SpoolRecord) -> bytes:
    """The record's bytes on disk (frame included)."""
    value, key, received_ms, peer, transport, lines = record
    payload = b"".join((_META.pack(received_ms, lines, len(key), len(peer), len(transport)),
                        key, peer, transport, value))
    return _FRAME.pack(zlib.crc32(payload), len(payload)) + payload


def decode(payload: bytes) -> SpoolRecord:
    """The record in a payload whose CRC was checked."""
    received_ms, lines, klen, plen, tlen = _META.unpack_from(payload)
    pos = _META.size
    key = payload[pos:pos + klen]
    pos += klen
    peer = payload[pos:pos + plen]
    pos += plen
    transport = payload[pos:pos + tlen]
    pos += tlen
    return SpoolRecord(payload[pos:], key, received_ms, peer, transport, lines)


def claimed_lines(payload: bytes, length: int) -> int:
    """The line count a damaged record's (unchecked) header claims, bounded by what a value of
    its length can hold, and at least 1: the best guess of how many lines it took with it."""
    if len(payload) < _LINES_AT + _LINES.size:
        return 1
    lines = int(_LINES.unpack_from(payload, _LINES_AT)[0])
    return max(1, min(lines, (max(0, length - _META.size) + 1) // 2))


class Segment:
    """A closed segment being drained: read it in batches, then release it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._file: BinaryIO | None = path.open("rb")
        self.exhausted = False
        self.corrupt = 0
        """Damaged records met (reading stops at the first)."""
        self.corrupt_lines = 0
        """Lines those records held, as far as their headers tell (see :func:`claimed_lines`)."""

    def read(self, max_records: int, max_lines: int | None = None) -> list[SpoolRecord]:
        """The next records: up to ``max_records``, and stopping once they hold ``max_lines``
        lines (at least one record); sets :attr:`exhausted` at the end."""
        out: list[SpoolRecord] = []
        file = self._file
        if file is None:
            return out
        lines = 0
        budget = max_lines if max_lines is not None else -1
        while len(out) < max_records and not (out and 0 <= budget <= lines):
            frame = file.read(_FRAME.size)
            if len(frame) < _FRAME.size:
                if frame:
                    self.corrupt += 1
                    self.corrupt_lines += 1
                self._close()
                break
            crc, length = _FRAME.unpack(frame)
            payload = file.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc or length < _META.size:
                self.corrupt += 1  # a torn write: nothing after it can be trusted
                self.corrupt_lines += claimed_lines(payload, length)
                self._close()
                break
            record = decode(payload)
            out.append(record)
            lines += record.lines
        return out

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.exhausted = True

    def close(self) -> None:
        """Stop reading (the file stays, to be read again from the start next time)."""
        if self._file is not None:
            self._file.close()
            self._file = None


class Spool:
    """Bounded FIFO of :class:`SpoolRecord` in ``directory``, at most ``max_bytes`` on disk."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, min(16 * 1024 * 1024, max_bytes // 8))
        directory.mkdir(parents=True, exist_ok=True)
        self._closed: deque[Path] = deque(sorted(directory.glob(f"*{_SUFFIX}")))
        self._seq = int(self._closed[-1].stem) + 1 if self._closed else 0
        self._active: BinaryIO | None = None
        self._active_path: Path | None = None
        self._active_size = 0
        self._active_records = 0
        self._draining: set[Path] = set()
        self.bytes_used = sum(p.stat().st_size for p in self._closed)
        self.records_appended = 0
        self.corrupt_records = 0
        self.corrupt_lines = 0

    # --- writing -------------------------------------------------------------------------
    def append(self, record: SpoolRecord, *, force: bool = False) -> bool:
        """Write one record; False (nothing written) when the spool is full.

        ``force`` writes beyond the cap: for records moved within the spool, or taken from the
        producer at shutdown, which must not be lost to a cap they were already inside.
        """
        data = encode(record)
        if not force and self.bytes_used + len(data) > self.max_bytes:
            return False
        if self._active is None or self._active_size >= self.segment_bytes:
            self._rotate()
        assert self._active is not None  # _rotate opened it
        self._active.write(data)
        self._active_size += len(data)
        self._active_records += 1
        self.bytes_used += len(data)
        self.records_appended += 1
        return True

    def sync(self) -> None:
        """Make what was appended durable (flush and fsync the active segment)."""
        if self._active is not None:
            self._active.flush()
            os.fsync(self._active.fileno())

    def _rotate(self) -> None:
        if self._active is not None:
            self.sync()
            self._active.close()
            assert self._active_path is not None
            self._closed.append(self._active_path)
        self._active_path = self.directory / f"{self._seq:016d}{_SUFFIX}"
        self._seq += 1
        self._active = self._active_path.open("ab")
        self._active_size = 0
        self._active_records = 0

    # --- draining ------------------------------------------------------------------------
    def __bool__(self) -> bool:
        """True while anything is spooled (on disk, not yet released)."""
        return self.bytes_used > 0

    def take(self) -> Segment | None:
        """The oldest segment not being drained (closing the active one if it is the last)."""
        if not self._closed and self._active is not None and self._active_records:
            self._rotate_out()
        while self._closed:
            path = self._closed.popleft()
            if path.stat().st_size == 0:
                path.unlink()
                continue
            self._draining.add(path)
            return Segment(path)
        return None

    def _rotate_out(self) -> None:
        assert self._active is not None and self._active_path is not None
        self.sync()
        self._active.close()
        self._closed.append(self._active_path)
        self._active = None
        self._active_path = None
        self._active_size = 0
        self._active_records = 0

    def release(self, segment: Segment) -> None:
        """All records of ``segment`` were delivered (or re-spooled): delete it."""
        segment.close()
        self.corrupt_records += segment.corrupt
        self.corrupt_lines += segment.corrupt_lines
        self._draining.discard(segment.path)
        segment.path.unlink(missing_ok=True)
        self.bytes_used -= segment.size

    def give_back(self, segment: Segment) -> None:
        """Stop draining ``segment`` without releasing it: it is read again next time."""
        segment.close()
        self._draining.discard(segment.path)
        self._closed.appendleft(segment.path)

    def close(self) -> None:
        """Flush, fsync and close the active segment; everything stays on disk for next time."""
        if self._active is not None:
            self._rotate_out()
