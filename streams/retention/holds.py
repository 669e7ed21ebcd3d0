"""Legal holds, stored in an OpenSearch index of our own (``esatrack-holds``).

A removed hold is not deleted: it gets ``removed_at``/``removed_by`` so that who held what, and
who released it, stays on record.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Final

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from streams.errors import EsatrackError, ServiceUnavailable
from streams.retention.policy import Hold

HOLDS_MAPPING: Final[dict[str, Any]] = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
        "reason": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
        "start": {"type": "date", "format": "strict_date"},
        "end": {"type": "date", "format": "strict_date"},
        "until": {"type": "date", "format": "strict_date"},
        "host": {"type": "keyword"},
        "kind": {"type": "keyword"},
        "created_by": {"type": "keyword"},
        "created_at": {"type": "date"},
        "removed_by": {"type": "keyword"},
        "removed_at": {"type": "date"},
    },
}


class HoldNotFound(EsatrackError):
    """No hold with that id."""


def hold_to_doc(hold: Hold) -> dict[str, Any]:
    """The stored form of a hold (dates as ISO strings)."""
    return {
        "id": hold.id, "reason": hold.reason,
        "start": hold.start.isoformat(), "end": hold.end.isoformat(),
        "until": hold.until.isoformat(), "host": hold.host, "kind": hold.kind,
        "created_by": hold.created_by, "created_at": hold.created_at.isoformat(),
        "removed_by": hold.removed_by,
        "removed_at": hold.removed_at.isoformat() if hold.removed_at else None,
    }


def hold_from_doc(doc: dict[str, Any]) -> Hold:
    """A hold from its stored form."""
    removed = doc.get("removed_at")
    return Hold(
        id=str(doc["id"]), reason=str(doc["reason"]),
        start=date.fromisoformat(doc["start"]), end=date.fromisoformat(doc["end"]),
        until=date.fromisoformat(doc["until"]),
        created_by=str(doc["created_by"]),
        created_at=datetime.fromisoformat(doc["created_at"]),
        host=doc.get("host"), kind=doc.get("kind"),
        removed_at=datetime.fromisoformat(removed) if removed else None,
        removed_by=doc.get("removed_by"),
    )


def new_hold_id() -> str:
    """A short, unique hold id to type on the command line."""
    return "hold-" + uuid.uuid4().hex[:12]


class HoldStore:
    """The holds index: add, list, remove."""

    def __init__(self, client: OpenSearch, index: str) -> None:
        self._client = client
        self._index = index

    def ensure(self) -> None:
        """Create the holds index if it is missing (one shard, kept on every node it can be)."""
        try:
            if not self._client.indices.exists(index=self._index):
                self._client.indices.create(index=self._index, body={
                    "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
                    "mappings": HOLDS_MAPPING,
                }, params={"ignore": 400})
        except OSConnectionError as exc:
            raise _unavailable(exc) from None

    def add(self, hold: Hold) -> None:
        """Store a new hold; it is visible to retention once this returns."""
        self.ensure()
        try:
            self._client.index(index=self._index, id=hold.id, body=hold_to_doc(hold),
                               params={"refresh": "wait_for", "op_type": "create"})
        except OSConnectionError as exc:
            raise _unavailable(exc) from None

    def all(self) -> list[Hold]:
        """Every hold ever added (removed ones too), oldest first. No holds index: none."""
        try:
            response = self._client.search(index=self._index, body={
                "size": 10000, "query": {"match_all": {}}, "sort": [{"created_at": "asc"}],
            })
        except NotFoundError:
            return []
        except OSConnectionError as exc:
            raise _unavailable(exc) from None
        except TransportError as exc:
            raise EsatrackError(
                f"cannot read the legal holds in {self._index!r} ({exc.error}); retention stops "
                "rather than risk deleting held data"
            ) from None
        return [hold_from_doc(hit["_source"]) for hit in response["hits"]["hits"]]

    def remove(self, hold_id: str, *, by: str, now: datetime | None = None) -> Hold:
        """Release a hold (kept on record as removed, by whom and when)."""
        current = {hold.id: hold for hold in self.all()}.get(hold_id)
        if current is None or current.removed_at is not None:
            raise HoldNotFound(f"no active hold {hold_id!r}; see `esatrack hold list`")
        moment = now or datetime.now(UTC)
        try:
            self._client.update(index=self._index, id=hold_id, body={
                "doc": {"removed_at": moment.isoformat(), "removed_by": by},
            }, params={"refresh": "wait_for"})
        except OSConnectionError as exc:
            raise _unavailable(exc) from None
        return hold_from_doc({**hold_to_doc(current), "removed_at": moment.isoformat(),
                              "removed_by": by})


def _unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"OpenSearch did not answer ({exc.__class__.__name__}); is it running? Check "
        "ESATRACK_OPENSEARCH_URL or start it with `esatrack stack up`"
    )
