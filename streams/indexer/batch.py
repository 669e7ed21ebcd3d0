"""Batching by count, bytes and age, and the offsets a finished batch lets us commit. Pure."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from streams.indexer.records import KafkaRecord


class Batcher:
    """Collects records until one limit is reached: ``max_docs``, ``max_bytes`` or
    ``max_seconds`` since the first record of the batch."""

    def __init__(self, max_docs: int, max_bytes: int, max_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_docs = max_docs
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._clock = clock
        self._records: list[KafkaRecord] = []
        self._bytes = 0
        self._started: float | None = None

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: KafkaRecord) -> None:
        if self._started is None:
            self._started = self._clock()
        self._records.append(record)
        self._bytes += record.size

    def room(self) -> int:
        """How many more records fit before the count limit."""
        return max(0, self.max_docs - len(self._records))

    def time_left(self) -> float:
        """Seconds until the age limit (the full age when empty)."""
        if self._started is None:
            return self.max_seconds
        return max(0.0, self.max_seconds - (self._clock() - self._started))

    def ready(self) -> bool:
        if not self._records:
            return False
        return (len(self._records) >= self.max_docs or self._bytes >= self.max_bytes
                or self.time_left() <= 0)

    def take(self) -> list[KafkaRecord]:
        """The batch so far; the batcher starts empty again."""
        records, self._records, self._bytes, self._started = self._records, [], 0, None
        return records

    def drop(self, positions: set[tuple[str, int]]) -> int:
        """Forget records of partitions this consumer no longer owns; how many were dropped."""
        kept = [r for r in self._records if r.position not in positions]
        dropped = len(self._records) - len(kept)
        self._records = kept
        self._bytes = sum(r.size for r in kept)
        if not kept:
            self._started = None
        return dropped


def commit_offsets(records: Iterable[KafkaRecord]) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the offset to commit after ``records``: the highest one + 1."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        key = record.position
        offsets[key] = max(offsets.get(key, 0), record.offset + 1)
    return offsets
