"""The local OpenSearch indexes, searches, scripts and deletes like the real thing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opensearchpy import OpenSearch

pytestmark = pytest.mark.integration

DOCS = {
    "m1": {"mid": 1, "sender": "a@example.com", "bytes": 100, "ts": "2024-05-01T10:00:00Z"},
    "m2": {"mid": 2, "sender": "b@example.com", "bytes": 2500, "ts": "2024-05-02T10:00:00Z"},
    "m3": {"mid": 3, "sender": "a@example.com", "bytes": 40, "ts": "2024-05-03T10:00:00Z"},
}
MAPPINGS = {"properties": {
    "mid": {"type": "long"}, "sender": {"type": "keyword"},
    "bytes": {"type": "long"}, "ts": {"type": "date"},
}}


def _load(client: OpenSearch, index: str) -> None:
    client.indices.create(
        index=index,
        body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": MAPPINGS},
    )
    for doc_id, doc in DOCS.items():
        client.index(index=index, id=doc_id, body=doc)
    client.indices.refresh(index=index)


def test_index_refresh_search(opensearch: OpenSearch, new_index: Callable[[], str]) -> None:
    """Indexed documents are found by a term query after a refresh, with their source intact."""
    index = new_index()
    _load(opensearch, index)
    result = opensearch.search(
        index=index, body={"query": {"term": {"sender": "a@example.com"}}, "sort": ["mid"]}
    )
    assert [hit["_id"] for hit in result["hits"]["hits"]] == ["m1", "m3"]
    assert result["hits"]["hits"][0]["_source"] == DOCS["m1"]


def test_painless_script_and_delete_by_query(
    opensearch: OpenSearch, new_index: Callable[[], str]
) -> None:
    """Painless computes script fields, and delete_by_query removes exactly the matching docs."""
    index = new_index()
    _load(opensearch, index)
    scripted = opensearch.search(index=index, body={
        "query": {"ids": {"values": ["m2"]}},
        "script_fields": {"kib": {"script": {
            "lang": "painless", "source": "doc['bytes'].value / params.unit",
            "params": {"unit": 1000},
        }}},
    })
    assert scripted["hits"]["hits"][0]["fields"]["kib"] == [2]

    deleted = opensearch.delete_by_query(
        index=index, body={"query": {"range": {"ts": {"lt": "2024-05-02T00:00:00Z"}}}},
        refresh=True,
    )
    assert deleted["deleted"] == 1
    remaining = opensearch.search(index=index, body={"query": {"match_all": {}}})
    assert sorted(hit["_id"] for hit in remaining["hits"]["hits"]) == ["m2", "m3"]
