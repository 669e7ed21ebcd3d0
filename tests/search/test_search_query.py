"""Criteria -> OpenSearch query, table-driven, no services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from streams.search.criteria import Criteria, Direction, Event, Op, SearchInputError, TextMatch
from streams.search.query import build_query, build_sort, lineage_query, message_id_forms

T0 = datetime(2024, 3, 17, 10, 0, tzinfo=UTC)
T1 = datetime(2024, 3, 18, 10, 0, tzinfo=UTC)
MS0 = int(T0.timestamp() * 1000)
MS1 = int(T1.timestamp() * 1000)


def _filters(criteria: Criteria) -> list[dict[str, Any]]:
    query = build_query(criteria)
    filters: list[dict[str, Any]] = query["bool"]["filter"]
    return filters


CASES: list[tuple[str, Criteria, list[dict[str, Any]]]] = [
    ("sender is, lower-cased for the normaliser",
     Criteria(sender=TextMatch(Op.IS, "Alice@Example.COM")),
     [{"term": {"sender": "alice@example.com"}}]),
    ("sender begins with",
     Criteria(sender=TextMatch(Op.BEGINS, "Alice@")),
     [{"prefix": {"sender": {"value": "alice@"}}}]),
    ("sender contains, on the wildcard sub-field, wildcard characters escaped",
     Criteria(sender=TextMatch(Op.CONTAINS, "a*b?c")),
     [{"wildcard": {"sender.wildcard": {"value": "*a\\*b\\?c*", "case_insensitive": True}}}]),
    ("recipient is: nested on one recipient",
     Criteria(recipient=TextMatch(Op.IS, "Bob@x.org")),
     [{"nested": {"path": "recipients",
                  "query": {"term": {"recipients.address": "bob@x.org"}}}}]),
    ("recipient contains",
     Criteria(recipient=TextMatch(Op.CONTAINS, "x.org")),
     [{"nested": {"path": "recipients", "query": {"wildcard": {"recipients.address.wildcard": {
         "value": "*x.org*", "case_insensitive": True}}}}}]),
    ("subject is, case-insensitive via the lower-cased keyword",
     Criteria(subject=TextMatch(Op.IS, "Invoice 42")),
     [{"term": {"subject.lower": "invoice 42"}}]),
    ("subject begins with",
     Criteria(subject=TextMatch(Op.BEGINS, "Re:")),
     [{"prefix": {"subject.lower": {"value": "re:"}}}]),
    ("subject contains",
     Criteria(subject=TextMatch(Op.CONTAINS, "Invoice")),
     [{"wildcard": {"subject.wildcard": {"value": "*invoice*", "case_insensitive": True}}}]),
    ("subject is empty: missing or empty string",
     Criteria(subject=TextMatch(Op.EMPTY)),
     [{"bool": {"should": [
         {"bool": {"must_not": [{"exists": {"field": "subject.wildcard"}}]}},
         {"term": {"subject.keyword": ""}}], "minimum_should_match": 1}}]),
    ("time range in epoch millis, end exclusive",
     Criteria(start=T0, end=T1),
     [{"range": {"started_at": {"format": "epoch_millis", "gte": MS0, "lt": MS1}}}]),
    ("open-ended time range",
     Criteria(start=T0),
     [{"range": {"started_at": {"format": "epoch_millis", "gte": MS0}}}]),
    ("sender IP network",
     Criteria(sender_ip="192.0.2.0/24"),
     [{"term": {"client.ip": "192.0.2.0/24"}}]),
    ("rejected connections only: connection actions, IP kept",
     Criteria(sender_ip="192.0.2.7", rejected_only=True),
     [{"term": {"client.ip": "192.0.2.7"}},
      {"terms": {"action": ["REJECT", "TCPREFUSE"]}}]),
    ("Message-ID in both bracket forms",
     Criteria(message_id="abc@host"),
     [{"terms": {"message_id": ["<abc@host>", "abc@host"]}}]),
    ("MID", Criteria(mid=50), [{"term": {"mid": 50}}]),
    ("hosts", Criteria(hosts=("esa1", "esa2")), [{"terms": {"host": ["esa1", "esa2"]}}]),
    ("attachment name, lower-cased",
     Criteria(attachment="Invoice.PDF"),
     [{"term": {"attachments.name": "invoice.pdf"}}]),
    ("attachment SHA-256",
     Criteria(attachment="AB" * 32),
     [{"term": {"attachments.sha256": "ab" * 32}}]),
    ("direction", Criteria(direction=Direction.OUTBOUND), [{"term": {"direction": "outbound"}}]),
    ("events OR-ed on tags without a recipient",
     Criteria(events=(Event.VIRUS_POSITIVE, Event.HARD_BOUNCED)),
     [{"terms": {"tags": ["virus_positive", "hard_bounced"]}}]),
    ("recipient X hard-bounced: address and status on the same nested recipient",
     Criteria(recipient=TextMatch(Op.IS, "x@y.z"), events=(Event.HARD_BOUNCED,)),
     [{"nested": {"path": "recipients", "query": {"term": {"recipients.address": "x@y.z"}}}},
      {"bool": {"should": [{"nested": {"path": "recipients", "query": {"bool": {"filter": [
          {"term": {"recipients.address": "x@y.z"}},
          {"terms": {"recipients.status": ["hard_bounced"]}}]}}}}],
          "minimum_should_match": 1}}]),
    ("recipient with per-recipient and message-level events: either may match",
     Criteria(recipient=TextMatch(Op.BEGINS, "x@"),
              events=(Event.DELIVERED, Event.SPAM_POSITIVE)),
     [{"nested": {"path": "recipients",
                  "query": {"prefix": {"recipients.address": {"value": "x@"}}}}},
      {"bool": {"should": [
          {"nested": {"path": "recipients", "query": {"bool": {"filter": [
              {"prefix": {"recipients.address": {"value": "x@"}}},
              {"terms": {"recipients.status": ["delivered"]}}]}}}},
          {"terms": {"tags": ["spam_positive"]}}], "minimum_should_match": 1}}]),
]


@pytest.mark.parametrize(("name", "criteria", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_criterion_builds_its_filter(
    name: str, criteria: Criteria, expected: list[dict[str, Any]]
) -> None:
    """Each criterion becomes exactly its filter clause(s), in a non-scoring bool filter."""
    assert _filters(criteria) == expected, name


def test_no_criteria_matches_everything() -> None:
    """No criteria at all asks for every record."""
    assert build_query(Criteria()) == {"match_all": {}}


def test_criteria_combine_with_and() -> None:
    """Several criteria are all required (AND), one filter each."""
    filters = _filters(Criteria(sender=TextMatch(Op.IS, "a@b"), mid=7, hosts=("esa1",),
                                start=T0, end=T1))
    assert len(filters) == 4
    assert {"term": {"mid": 7}} in filters
    assert {"terms": {"host": ["esa1"]}} in filters


def test_sort_is_total_for_search_after() -> None:
    """The sort ends with the unique record id so search_after never skips or repeats."""
    assert build_sort() == [{"started_at": {"order": "asc"}}, {"id": {"order": "asc"}}]
    assert build_sort(newest_first=True)[1] == {"id": {"order": "desc"}}


def test_lineage_query_is_one_host_many_mids() -> None:
    """Lineage lookups stay on one appliance: MIDs are per appliance."""
    assert lineage_query("esa1", [5, 6]) == {
        "bool": {"filter": [{"term": {"host": "esa1"}}, {"terms": {"mid": [5, 6]}}]}}


@pytest.mark.parametrize("typed", ["<a@b>", "a@b", " <a@b> "])
def test_message_id_forms(typed: str) -> None:
    """A Message-ID is looked up with and without angle brackets, however it was typed."""
    assert message_id_forms(typed) == ["<a@b>", "a@b"]


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("empty sender", {"sender": TextMatch(Op.EMPTY)}, "only the subject"),
    ("sender without value", {"sender": TextMatch(Op.IS, "")}, "needs a value"),
    ("start after end", {"start": T1, "end": T0}, "must be before"),
    ("bad IP", {"sender_ip": "300.1.1.1"}, "not an IP"),
    ("rejected-only with message criteria",
     {"rejected_only": True, "sender": TextMatch(Op.IS, "a@b"), "mid": 5},
     "--sender, --mid"),
]


@pytest.mark.parametrize(("name", "kwargs", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_criteria_say_what_is_wrong(
    name: str, kwargs: dict[str, Any], message: str
) -> None:
    """Contradictory or malformed criteria are refused with a message naming the problem."""
    with pytest.raises(SearchInputError, match=message.replace("-", r"\-")):
        Criteria(**kwargs)
