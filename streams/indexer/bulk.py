"""Bulk requests: encoding actions as NDJSON and sorting a bulk response's items into indexed,
already applied (version conflicts), to retry (429/5xx) and rejected (other 4xx). Pure."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from streams.indexer.records import KafkaRecord

CONFLICT = 409
MIN_CHUNK = 500
"""Below this many actions per request, splitting a batch costs more than it gains."""


@dataclass(frozen=True)
class Action:
    """One document to write: where, under which id, with which body and version."""

    kind: str
    index: str
    doc_id: str
    source: bytes
    """The document as one line of JSON."""
    origin: KafkaRecord
    op: Literal["index", "create"] = "index"
    version: int | None = None
    """External version (the record's revision): a lower one never overwrites a higher one."""

    def header(self) -> bytes:
        meta: dict[str, Any] = {"_index": self.index, "_id": self.doc_id}
        if self.version is not None:
            meta["version"] = self.version
            meta["version_type"] = "external"
        return orjson.dumps({self.op: meta})


def encode_bulk(actions: Sequence[Action]) -> bytes:
    """The NDJSON body of a bulk request for ``actions`` (ends with a newline)."""
    parts: list[bytes] = []
    for action in actions:
        parts.append(action.header())
        parts.append(action.source)
    parts.append(b"")
    return b"\n".join(parts)


def split_by_id(actions: Sequence[Action], parts: int) -> list[list[Action]]:
    """Split ``actions`` into at most ``parts`` non-empty lists, keeping every action on one
    document id in the same list and in order (so parallel requests never reorder writes to a
    document). Small batches stay whole."""
    if parts <= 1 or len(actions) < 2 * MIN_CHUNK:
        return [list(actions)]
    chunks: list[list[Action]] = [[] for _ in range(parts)]
    for action in actions:
        chunks[zlib.crc32(action.doc_id.encode()) % parts].append(action)
    return [chunk for chunk in chunks if chunk]


def retryable_status(status: int) -> bool:
    """Whether a status means "try again later": too many requests or a server-side error."""
    return status == 429 or status >= 500


def item_reason(status: int, error: Any) -> str:
    """A one-line reason from a bulk item's error object (type, reason, root cause)."""
    if not isinstance(error, dict):
        return f"{status} {error}"
    text = f"{status} {error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type', 'error')}: {cause.get('reason', '')})"
    return text


@dataclass
class BulkResult:
    """A bulk response sorted by what the indexer must do next with each action."""

    indexed: list[Action] = field(default_factory=list)
    applied: list[Action] = field(default_factory=list)
    """Version conflicts: this or a newer revision (or this very raw line) is already stored."""
    retry: list[tuple[Action, str]] = field(default_factory=list)
    rejected: list[tuple[Action, str]] = field(default_factory=list)


def classify(actions: Sequence[Action], response: dict[str, Any]) -> BulkResult:
    """Pair a bulk response's items with the actions sent, in order, and sort them.

    A response with fewer items than actions is a protocol error: the missing ones are retried.
    """
    result = BulkResult()
    items = response.get("items") or []
    for position, action in enumerate(actions):
        if position >= len(items):
            result.retry.append((action, "no item in the bulk response"))
            continue
        item: dict[str, Any] = next(iter(items[position].values()), {})
        status = int(item.get("status", 0))
        if 200 <= status < 300:
            result.indexed.append(action)
        elif status == CONFLICT:
            result.applied.append(action)
        elif retryable_status(status) or status == 0:
            result.retry.append((action, item_reason(status, item.get("error"))))
        else:
            result.rejected.append((action, item_reason(status, item.get("error"))))
    return result
