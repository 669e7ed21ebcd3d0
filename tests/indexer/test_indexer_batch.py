"""Batching by count, bytes and age; offsets to commit; backoff delays; dead-letter encoding."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest

from streams.indexer.backoff import Backoff
from streams.indexer.batch import Batcher, commit_offsets
from streams.indexer.deadletter import encode_dead_letter
from streams.indexer.records import DeadLetter, KafkaRecord


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rec(partition: int, offset: int, size: int = 10, topic: str = "t") -> KafkaRecord:
    return KafkaRecord(topic, partition, offset, None, b"x" * size)


@pytest.mark.parametrize(("docs", "size", "elapsed", "ready"), [
    (2, 10, 0.0, False),     # under every limit
    (3, 10, 0.0, True),      # count limit
    (1, 1000, 0.0, True),    # byte limit
    (1, 10, 5.0, True),      # age limit
    (0, 10, 9.0, False),     # empty is never ready
])
def test_batch_ready_on_any_limit(docs: int, size: int, elapsed: float, ready: bool) -> None:
    """A batch is ready when it reaches the count, the bytes or the age limit, never empty."""
    clock = Clock()
    batcher = Batcher(max_docs=3, max_bytes=1000, max_seconds=5.0, clock=clock)
    for n in range(docs):
        batcher.add(rec(0, n, size))
    clock.now += elapsed
    assert batcher.ready() is ready


def test_take_empties_and_restarts_the_clock() -> None:
    """take() returns the batch in order and the next batch's age starts at its first record."""
    clock = Clock()
    batcher = Batcher(max_docs=10, max_bytes=10_000, max_seconds=5.0, clock=clock)
    batcher.add(rec(0, 1))
    clock.now += 4
    batcher.add(rec(0, 2))
    assert [r.offset for r in batcher.take()] == [1, 2]
    assert len(batcher) == 0
    assert batcher.time_left() == 5.0
    batcher.add(rec(0, 3))
    clock.now += 4.5
    assert not batcher.ready()


def test_drop_forgets_revoked_partitions() -> None:
    """Records of revoked partitions are dropped; the others stay."""
    batcher = Batcher(max_docs=10, max_bytes=10_000, max_seconds=5.0)
    for partition, offset in [(0, 1), (1, 1), (0, 2)]:
        batcher.add(rec(partition, offset))
    assert batcher.drop({("t", 0)}) == 2
    assert [(r.partition, r.offset) for r in batcher.take()] == [(1, 1)]


def test_commit_offsets_are_highest_plus_one() -> None:
    """Per topic and partition, the offset to commit is one past the highest in the batch."""
    records = [rec(0, 5), rec(0, 3), rec(1, 9), rec(0, 4, topic="u")]
    assert commit_offsets(records) == {("t", 0): 6, ("t", 1): 10, ("u", 0): 5}


def test_backoff_grows_to_the_cap() -> None:
    """Delays double from the initial value and stop at the maximum; reset starts over."""
    backoff = Backoff(initial=0.5, maximum=4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.attempts == 6
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_jitter_stretches_within_bounds() -> None:
    """Jitter lengthens a delay by at most its fraction and never past the maximum."""
    backoff = Backoff(initial=1.0, maximum=1.5, jitter=0.25, rand=lambda: 1.0)
    assert backoff.next_delay() == 1.25
    assert backoff.next_delay() == 1.5


def test_dead_letter_keeps_original_and_reason() -> None:
    """A dead letter carries the reason, the origin, the original key and value."""
    record = KafkaRecord("esa.messages", 3, 42, b"esa1", b'{"id": 1}', 1_700_000_000_000)
    key, value, headers = encode_dead_letter(
        DeadLetter(record, "400 mapper_parsing_exception: bad ip", "index"),
        now=datetime(2024, 1, 1, tzinfo=UTC))
    body = orjson.loads(value)
    assert key == b"esa1"
    assert body["reason"] == "400 mapper_parsing_exception: bad ip"
    assert body["stage"] == "index"
    assert body["source"] == {"topic": "esa.messages", "partition": 3, "offset": 42,
                              "timestamp_ms": 1_700_000_000_000}
    assert body["value"] == '{"id": 1}'
    assert dict(headers)["esatrack-source"] == b"esa.messages/3/42"


def test_dead_letter_of_binary_value_is_base64() -> None:
    """A value that is not UTF-8 is kept exactly, as base64."""
    record = KafkaRecord("esa.messages", 0, 1, None, b"\xff\x00\xfe")
    _key, value, _headers = encode_dead_letter(DeadLetter(record, "value is not JSON", "decode"))
    body = orjson.loads(value)
    assert "value" not in body
    assert base64.b64decode(body["value_b64"]) == b"\xff\x00\xfe"
