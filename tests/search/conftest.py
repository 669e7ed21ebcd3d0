"""Fixtures for search tests against the real local OpenSearch: unique indices built from the
shipped templates (schemas/opensearch/), so the mappings under test are the real ones, without
touching the esa-* aliases."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from opensearchpy import OpenSearch, helpers

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "opensearch"


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def index_body(kind: str) -> dict[str, Any]:
    """Settings and mappings an ``esa-<kind>-*`` index gets from the shipped templates."""
    template = orjson.loads((SCHEMAS / f"esa-{kind}.index-template.json").read_bytes())
    body: dict[str, Any] = {"settings": {}, "mappings": {}}
    for name in template.get("composed_of", []):
        component = orjson.loads((SCHEMAS / f"{name}.component.json").read_bytes())
        _merge(body, {k: v for k, v in component["template"].items() if k != "aliases"})
    _merge(body, {k: v for k, v in template["template"].items() if k != "aliases"})
    body["settings"].setdefault("index", {}).update(number_of_shards=1, number_of_replicas=0)
    return body


@pytest.fixture(scope="session")
def os_client(opensearch: OpenSearch) -> OpenSearch:
    """The client of the shared ``opensearch`` fixture (which makes sure the stack runs)."""
    return opensearch


IndexFactory = Callable[[str, Sequence[dict[str, Any]]], str]


@pytest.fixture
def seeded_index(os_client: OpenSearch, new_index: Callable[[], str]) -> IndexFactory:
    """Create a unique index with the real mappings of a kind, bulk-load records (``_id`` =
    record id), refresh. The shared ``new_index`` factory deletes it after the test."""

    def make(kind: str, records: Sequence[dict[str, Any]]) -> str:
        name = new_index()
        os_client.indices.create(index=name, body=index_body(kind))
        actions = ({"_index": name, "_id": record["id"], "_source": record} for record in records)
        helpers.bulk(os_client, actions, chunk_size=5000, request_timeout=120)
        os_client.indices.refresh(index=name)
        return name

    return make
