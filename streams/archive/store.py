"""The archive's OpenSearch edge: find chain heads, find lines already archived, stream a chain.

Exceptions from opensearch-py pass through: the indexer decides what is retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from streams.archive.chain import ChainHead, ChainKey, index_for_day

PIT_KEEP_ALIVE = "2m"
SORT = [{"seq": "asc"}, {"partition": "asc"}, {"offset": "asc"}]


def recover_head(client: OpenSearch, key: ChainKey) -> ChainHead | None:
    """The highest-sequence link of a chain in the archive, None if the chain has no line yet.

    The index is refreshed first: the previous owner's last writes may not be searchable yet.
    """
    host, day = key
    index = index_for_day(day)
    try:
        client.indices.refresh(index=index)
        found = client.search(index=index, body={
            "size": 1,
            "query": {"term": {"host": host}},
            "sort": [{"seq": "desc"}],
            "_source": ["seq", "hash"],
        })
    except NotFoundError:
        return None
    hits = found["hits"]["hits"]
    if not hits:
        return None
    source = hits[0]["_source"]
    return ChainHead(int(source["seq"]), str(source["hash"]))


def existing_ids(client: OpenSearch, refs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the (index, id) pairs are already archived (real-time get, no refresh needed)."""
    docs = [{"_index": index, "_id": doc_id} for index, doc_id in refs]
    if not docs:
        return set()
    found = client.mget(body={"docs": docs}, params={"_source": "false"})
    return {(d["_index"], d["_id"]) for d in found["docs"] if d.get("found")}


def stream_chain(client: OpenSearch, host: str, day: str,
                 page_size: int = 2000) -> Iterator[dict[str, Any]]:
    """Every archived line of ``host`` on ``day`` in chain order, through a point in time and
    ``search_after`` (consistent however long the walk takes). Raises NotFoundError if the
    day has no raw index."""
    index = index_for_day(day)
    client.indices.refresh(index=index)  # every acknowledged line, not only the refreshed ones
    pit = client.create_pit(index=index, params={"keep_alive": PIT_KEEP_ALIVE})
    pit_id = pit["pit_id"]
    try:
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": page_size,
                "query": {"term": {"host": host}},
                "sort": SORT,
                "pit": {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE},
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            page = client.search(body=body)
            hits = page["hits"]["hits"]
            for hit in hits:
                yield hit["_source"]
            if len(hits) < page_size:
                return
            after = hits[-1]["sort"]
            pit_id = page.get("pit_id", pit_id)
    finally:
        client.delete_pit(body={"pit_id": [pit_id]})
