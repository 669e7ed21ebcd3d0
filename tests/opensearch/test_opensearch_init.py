"""`esatrack opensearch init` against the real OpenSearch: idempotent, and the indices it
shapes answer tracking questions correctly."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from opensearchpy import OpenSearch

from streams.opensearch.naming import KINDS, alias, daily_index
from streams.opensearch.templates import init_cluster
from streams.settings import load_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def future_day(opensearch: OpenSearch) -> Iterator[datetime]:
    """A random far-future UTC day (no other test or retention run touches it); its esa-*
    indices are deleted afterwards."""
    day = datetime(2200, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(36_000))
    yield day
    for kind in KINDS:
        opensearch.indices.delete(index=daily_index(kind, day), ignore_unavailable=True)


def _installed(client: OpenSearch) -> dict[str, object]:
    return {
        "components": client.cluster.get_component_template(name="esa-*"),
        "indices": client.indices.get_index_template(name="esa-*"),
    }


def test_init_twice_changes_nothing(opensearch: OpenSearch) -> None:
    """A second init reports every template unchanged and leaves them exactly as they were."""
    settings = load_settings()
    init_cluster(opensearch, settings)
    before = _installed(opensearch)
    outcomes = init_cluster(opensearch, settings)
    assert _installed(opensearch) == before
    templates = [o for o in outcomes if o.what.endswith("template")]
    assert {o.name for o in templates} == {"esa-common", "esa-messages",
                                           "esa-connections", "esa-raw"}
    assert {o.action for o in templates} == {"unchanged"}
    for kind in KINDS:
        assert opensearch.indices.exists_alias(name=alias(kind))


def test_init_updates_a_changed_template(opensearch: OpenSearch) -> None:
    """A template whose installed form differs (another shard count) is updated, then stable."""
    settings = load_settings()
    init_cluster(opensearch, settings)
    try:
        changed = init_cluster(opensearch, load_settings(opensearch_shards=2))
        actions = {o.name: o.action for o in changed if o.what == "index template"}
        assert actions == dict.fromkeys(("esa-connections", "esa-messages", "esa-raw"), "updated")
    finally:
        restored = init_cluster(opensearch, settings)
    assert {o.action for o in restored if o.what == "index template"} == {"updated"}


@pytest.mark.parametrize(("ism", "detail"), [(False, "not requested"),
                                             (True, "no Index State Management plugin")])
def test_ism_policy_is_opt_in_and_skipped_without_plugin(opensearch: OpenSearch, ism: bool,
                                                         detail: str) -> None:
    """The ISM policy is installed only on request, and on a cluster without the plugin it is
    reported skipped with the reason, not failed."""
    outcomes = init_cluster(opensearch, load_settings(), ism=ism)
    (policy,) = [o for o in outcomes if o.what == "ISM policy"]
    assert (policy.name, policy.action) == ("esa-retention", "skipped")
    assert detail in policy.detail


def _message(rid: str, day: datetime) -> dict[str, object]:
    return {
        "type": "message", "id": rid, "host": "esa1", "mid": 101, "revision": 1,
        "started_at": day.isoformat(), "sender": "Alice.Smith@Example.COM",
        "subject": "Quarterly Report", "client": {"ip": "192.0.2.10"},
        "recipients": [
            {"rid": 0, "address": "bob@example.org", "status": "delivered"},
            {"rid": 1, "address": "carol@example.net", "status": "hard_bounced"},
        ],
        "tags": ["delivered", "hard_bounced"],
    }


def test_indices_answer_tracking_queries(opensearch: OpenSearch, future_day: datetime) -> None:
    """A daily index made from the template: nested recipients, case-insensitive addresses,
    contains via the wildcard sub-field, client IP ranges, and the kind's alias."""
    init_cluster(opensearch, load_settings())
    index = daily_index("messages", future_day)
    opensearch.index(index=index, id="m1", body=_message("m1", future_day), refresh=True)

    def hits(query: dict[str, object]) -> int:
        found = opensearch.search(index=alias("messages"), body={
            "query": {"bool": {"filter": [query, {"term": {"id": "m1"}}]}}})
        return int(found["hits"]["total"]["value"])

    def recipient(address: str, status: str) -> dict[str, object]:
        return {"nested": {"path": "recipients", "query": {"bool": {"filter": [
            {"term": {"recipients.address": address}},
            {"term": {"recipients.status": status}}]}}}}

    assert hits(recipient("carol@example.net", "hard_bounced")) == 1
    assert hits(recipient("bob@example.org", "hard_bounced")) == 0
    assert hits({"term": {"sender": "alice.smith@example.com"}}) == 1
    assert hits({"prefix": {"sender": "alice."}}) == 1
    assert hits({"wildcard": {"sender.wildcard": {"value": "*smith@exa*"}}}) == 1
    assert hits({"wildcard": {"sender.wildcard": {"value": "*smyth*"}}}) == 0
    assert hits({"term": {"client.ip": "192.0.2.0/24"}}) == 1
    assert hits({"term": {"subject.lower": "quarterly report"}}) == 1
    assert hits({"match": {"subject": "report"}}) == 1
    mapping = opensearch.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["recipients"]["type"] == "nested"
