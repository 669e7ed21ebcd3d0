"""Bulk bodies and the sorting of bulk responses into indexed, applied, retry and rejected."""

from __future__ import annotations

import orjson
import pytest

from streams.indexer.bulk import (
    Action,
    classify,
    encode_bulk,
    item_reason,
    retryable_status,
    split_by_id,
)
from streams.indexer.records import KafkaRecord


def action(n: int, op: str = "index") -> Action:
    record = KafkaRecord("esa.messages", 0, n, None, b"{}")
    return Action(kind="messages", index="esa-messages-2024.01.01", doc_id=f"id{n}",
                  source=orjson.dumps({"n": n}), origin=record,
                  op="create" if op == "create" else "index", version=n)


def test_encode_bulk_alternates_header_and_source() -> None:
    """The body is header/source line pairs, newline-terminated, in action order."""
    body = encode_bulk([action(1), action(2, "create")])
    lines = body.split(b"\n")
    assert lines[-1] == b""
    assert [orjson.loads(line) for line in lines[:-1]] == [
        {"index": {"_index": "esa-messages-2024.01.01", "_id": "id1", "version": 1,
                   "version_type": "external"}},
        {"n": 1},
        {"create": {"_index": "esa-messages-2024.01.01", "_id": "id2", "version": 2,
                    "version_type": "external"}},
        {"n": 2},
    ]


def test_classify_sorts_every_item() -> None:
    """2xx indexed, 409 applied, 429/5xx retried, other 4xx rejected with the reason."""
    actions = [action(n) for n in range(6)]
    response = {"errors": True, "items": [
        {"index": {"status": 201}},
        {"index": {"status": 200}},
        {"index": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
        {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception",
                                            "reason": "queue full"}}},
        {"index": {"status": 503, "error": {"type": "unavailable_shards_exception"}}},
        {"index": {"status": 400, "error": {
            "type": "mapper_parsing_exception", "reason": "failed to parse field [client.ip]",
            "caused_by": {"type": "illegal_argument_exception",
                          "reason": "'nope' is not an IP string literal."}}}},
    ]}
    result = classify(actions, response)
    assert [a.doc_id for a in result.indexed] == ["id0", "id1"]
    assert [a.doc_id for a in result.applied] == ["id2"]
    assert [a.doc_id for a, _ in result.retry] == ["id3", "id4"]
    assert "queue full" in result.retry[0][1]
    ((rejected, reason),) = result.rejected
    assert rejected.doc_id == "id5"
    assert reason.startswith("400 mapper_parsing_exception")
    assert "not an IP string literal" in reason


def test_missing_items_are_retried() -> None:
    """If the response has fewer items than actions were sent, the rest are retried."""
    result = classify([action(1), action(2)], {"items": [{"index": {"status": 201}}]})
    assert [a.doc_id for a in result.indexed] == ["id1"]
    assert [a.doc_id for a, _ in result.retry] == ["id2"]


@pytest.mark.parametrize(("status", "retry"), [
    (429, True), (500, True), (502, True), (503, True), (400, False), (404, False), (409, False),
])
def test_retryable_status(status: int, retry: bool) -> None:
    """Only throttling and server-side errors are retried."""
    assert retryable_status(status) is retry


def test_item_reason_without_error_object() -> None:
    """A non-object error still yields a readable reason."""
    assert item_reason(400, "bad") == "400 bad"


def test_split_keeps_each_document_in_one_chunk_in_order() -> None:
    """Splitting for parallel requests keeps all actions on one id together and in order,
    loses none, and leaves small batches whole."""
    actions = [action(n % 700) for n in range(2100)]
    chunks = split_by_id(actions, 3)
    assert 1 < len(chunks) <= 3
    assert sorted(a.origin.offset for c in chunks for a in c) == sorted(
        a.origin.offset for a in actions)
    homes = {a.doc_id: i for i, chunk in enumerate(chunks) for a in chunk}
    for i, chunk in enumerate(chunks):
        assert all(homes[a.doc_id] == i for a in chunk)
        assert chunk == [a for a in actions if homes[a.doc_id] == i]
    assert split_by_id(actions[:999], 3) == [actions[:999]]
    assert split_by_id(actions, 1) == [actions]
