"""Kafka records and how a record of esa.messages / esa.connections becomes an index action.

Pure: a record is either an :class:`~streams.indexer.bulk.Action` or a
:class:`DeadLetter` saying why it cannot be indexed; nothing raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson

from streams.indexer.bulk import Action
from streams.opensearch.naming import daily_index

RECORD_TYPES: Final = {"messages": "message", "connections": "connection"}
"""The ``type`` a record must carry (if it carries one) on each kind's topic."""


@dataclass(frozen=True)
class KafkaRecord:
    """What the indexer keeps of a consumed Kafka message (plain data, easy to test with)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")

    @property
    def position(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class DeadLetter:
    """A record (or the document made of it) that cannot be indexed, and why."""

    record: KafkaRecord
    reason: str
    stage: str
    """``decode`` (the Kafka value is not a record) or ``index`` (OpenSearch rejected it)."""


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (naive means UTC); None if not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def route_record(record: KafkaRecord, kind: str) -> Action | DeadLetter:
    """The index action for a record of ``kind`` (``messages``/``connections``), or why not.

    The document id is the record id and the index the day of ``started_at``, so every revision
    of a record lands on the same document; ``revision`` becomes the external version, so an
    older revision arriving late cannot overwrite a newer one.
    """
    def dead(reason: str) -> DeadLetter:
        return DeadLetter(record, reason, "decode")

    if record.value is None:
        return dead("empty value (tombstone): no record to index")
    try:
        data = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        return dead(f"value is not JSON: {exc}")
    if not isinstance(data, dict):
        return dead(f"value is JSON {type(data).__name__}, not a record object")
    record_id = data.get("id")
    if not isinstance(record_id, str) or not record_id:
        return dead("record has no 'id' string")
    expected = RECORD_TYPES.get(kind)
    if "type" in data and data["type"] != expected:
        return dead(f"record type {data['type']!r} does not belong on the {kind} topic "
                    f"(expected {expected!r})")
    revision = data.get("revision")
    if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)
                                 or revision < 0):
        return dead(f"'revision' must be a non-negative integer, got {revision!r}")
    started = parse_time(data.get("started_at"))
    if started is None:
        return dead(f"'started_at' is not an ISO 8601 time: {data.get('started_at')!r}")
    source = record.value if b"\n" not in record.value else orjson.dumps(data)
    return Action(kind=kind, index=daily_index(kind, started), doc_id=record_id, source=source,
                  version=revision, origin=record)
