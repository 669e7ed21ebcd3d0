"""The hash chain of raw lines, pure: no I/O.

Per appliance (``host``) and UTC day, the archived lines form a chain: line *n* (``seq`` = n,
starting at 1) stores ``hash_n = sha256(hash_{n-1} + line_n)`` (hex of the previous hash as ASCII,
then the line's raw bytes) and ``prev_hash = hash_{n-1}``. ``hash_0`` is a genesis value derived
from the host and the day, so a chain cannot be moved to another appliance or day unnoticed.
Editing a line breaks its link; deleting one leaves a gap in ``seq``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from streams.opensearch.naming import daily_index

ChainKey = tuple[str, str]
"""(host, day as ``YYYY-MM-DD``): one chain."""


def genesis_hash(host: str, day: str) -> str:
    """``hash_0`` of the chain of ``host`` on ``day`` (``YYYY-MM-DD``)."""
    return hashlib.sha256(f"esatrack raw chain|{host}|{day}".encode()).hexdigest()


def link_hash(prev_hash: str, line: bytes) -> str:
    """``sha256(prev_hash + line)`` as hex: the hash a line's document must carry."""
    return hashlib.sha256(prev_hash.encode("ascii") + line).hexdigest()


def raw_doc_id(topic: str, partition: int, offset: int, line: bytes) -> str:
    """The document id of a raw record: its Kafka position and a digest of its topic and bytes.

    A redelivery (same topic, position and bytes) maps to the same id, so it is recognised and
    not archived twice. The position alone is not enough: records of another raw topic, or of
    the same topic deleted and created again, reuse positions within the same daily index, and
    would be taken for archived ones and skipped.
    """
    digest = hashlib.blake2b(topic.encode() + b"\0" + line, digest_size=8).hexdigest()
    return f"{partition}-{offset}-{digest}"


def line_fields(line: bytes) -> dict[str, str]:
    """How a line is stored: as text when it is UTF-8, else as replaced text plus exact base64."""
    try:
        return {"line": line.decode("utf-8")}
    except UnicodeDecodeError:
        return {"line": line.decode("utf-8", errors="replace"),
                "line_b64": base64.b64encode(line).decode("ascii")}


def line_bytes(doc: dict[str, Any]) -> bytes:
    """The exact bytes a stored document claims for its line (inverse of :func:`line_fields`)."""
    if "line_b64" in doc:
        return base64.b64decode(doc["line_b64"], validate=True)
    return str(doc["line"]).encode("utf-8")


@dataclass(frozen=True)
class ChainHead:
    """The last link of a chain: its sequence number and hash (seq 0 = genesis)."""

    seq: int
    hash: str

    @classmethod
    def genesis(cls, key: ChainKey) -> ChainHead:
        return cls(0, genesis_hash(*key))


@dataclass(frozen=True)
class RawLine:
    """One record of the raw topic: appliance (Kafka key), receive time, position, bytes."""

    host: str
    received_ms: int
    partition: int
    offset: int
    line: bytes
    topic: str = ""
    """The Kafka topic it was read from (part of its document id)."""

    @property
    def received_at(self) -> datetime:
        return datetime.fromtimestamp(self.received_ms / 1000, UTC)

    @property
    def day(self) -> str:
        return f"{self.received_at:%Y-%m-%d}"

    @property
    def key(self) -> ChainKey:
        return (self.host, self.day)

    @property
    def index(self) -> str:
        return daily_index("raw", self.received_at)

    @property
    def doc_id(self) -> str:
        return raw_doc_id(self.topic, self.partition, self.offset, self.line)


def index_for_day(day: date | str) -> str:
    """The raw index of a UTC day given as a date or ``YYYY-MM-DD``."""
    when = day if isinstance(day, date) else date.fromisoformat(day)
    return daily_index("raw", datetime(when.year, when.month, when.day, tzinfo=UTC))


class ChainBuilder:
    """Extends chains line by line. Heads must be known (recovered from the archive, or genesis)
    before a chain's first line in this process; the caller supplies them via :meth:`set_head`."""

    def __init__(self) -> None:
        self._heads: dict[ChainKey, ChainHead] = {}

    def unknown(self, keys: set[ChainKey]) -> set[ChainKey]:
        """The chains among ``keys`` whose head this builder does not know yet."""
        return {key for key in keys if key not in self._heads}

    def set_head(self, key: ChainKey, head: ChainHead | None) -> None:
        """Record a chain's head (None: the chain has no line yet, start from genesis)."""
        self._heads[key] = head or ChainHead.genesis(key)

    def head(self, key: ChainKey) -> ChainHead:
        return self._heads[key]

    def forget(self) -> None:
        """Drop every known head (after a rebalance another process may have extended them)."""
        self._heads.clear()

    def append(self, raw: RawLine) -> dict[str, Any]:
        """The archive document of the next line of its chain; advances the head."""
        head = self._heads[raw.key]
        seq = head.seq + 1
        digest = link_hash(head.hash, raw.line)
        self._heads[raw.key] = ChainHead(seq, digest)
        return {
            "host": raw.host,
            "received_at": raw.received_at.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "topic": raw.topic,
            "partition": raw.partition,
            "offset": raw.offset,
            **line_fields(raw.line),
            "seq": seq,
            "prev_hash": head.hash,
            "hash": digest,
        }
