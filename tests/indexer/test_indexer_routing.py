"""Routing records of esa.messages / esa.connections to index actions, or to dead letters."""

from __future__ import annotations

import orjson
import pytest

from streams.indexer.bulk import Action
from streams.indexer.records import DeadLetter, KafkaRecord, parse_time, route_record


def rec(value: bytes | None, topic: str = "esa.messages", offset: int = 7) -> KafkaRecord:
    return KafkaRecord(topic=topic, partition=2, offset=offset, key=b"esa1", value=value,
                       timestamp_ms=1_700_000_000_000)


MESSAGE = {"type": "message", "id": "esa1:m:101:1700000000", "revision": 3,
           "started_at": "2024-03-17T23:59:59.500Z", "sender": "a@b.c"}


def test_message_becomes_versioned_action_in_start_day_index() -> None:
    """A record is indexed under its id, in the daily index of its start, versioned by revision."""
    action = route_record(rec(orjson.dumps(MESSAGE)), "messages")
    assert isinstance(action, Action)
    assert (action.index, action.doc_id, action.version, action.op) == (
        "esa-messages-2024.03.17", MESSAGE["id"], 3, "index")
    assert orjson.loads(action.source) == MESSAGE
    assert orjson.loads(action.header()) == {"index": {
        "_index": "esa-messages-2024.03.17", "_id": MESSAGE["id"], "version": 3,
        "version_type": "external"}}


def test_revisions_share_index_and_id() -> None:
    """Later revisions (even finishing next day) map to the same index and id."""
    later = {**MESSAGE, "revision": 9, "finished_at": "2024-03-18T10:00:00Z"}
    first = route_record(rec(orjson.dumps(MESSAGE)), "messages")
    second = route_record(rec(orjson.dumps(later)), "messages")
    assert isinstance(first, Action)
    assert isinstance(second, Action)
    assert (first.index, first.doc_id) == (second.index, second.doc_id)


def test_record_without_revision_is_plain_index() -> None:
    """A record without revision is indexed without a version (last write wins)."""
    conn = {"type": "connection", "id": "esa1:c:5", "started_at": "2024-03-17T01:00:00+07:00"}
    action = route_record(rec(orjson.dumps(conn), "esa.connections"), "connections")
    assert isinstance(action, Action)
    assert action.version is None
    assert action.index == "esa-connections-2024.03.16"  # start converted to UTC
    assert b"version" not in action.header()


def test_pretty_json_is_reencoded_on_one_line() -> None:
    """A multi-line JSON value is re-serialised so the NDJSON body stays one line per doc."""
    action = route_record(rec(orjson.dumps(MESSAGE, option=orjson.OPT_INDENT_2)), "messages")
    assert isinstance(action, Action)
    assert b"\n" not in action.source
    assert orjson.loads(action.source) == MESSAGE


@pytest.mark.parametrize(("value", "reason"), [
    (None, "tombstone"),
    (b"\xff\xfe not json", "not JSON"),
    (b"[1, 2]", "not a record object"),
    (orjson.dumps({**MESSAGE, "id": ""}), "no 'id'"),
    (orjson.dumps({k: v for k, v in MESSAGE.items() if k != "id"}), "no 'id'"),
    (orjson.dumps({**MESSAGE, "type": "connection"}), "does not belong"),
    (orjson.dumps({**MESSAGE, "revision": -1}), "non-negative integer"),
    (orjson.dumps({**MESSAGE, "revision": "3"}), "non-negative integer"),
    (orjson.dumps({**MESSAGE, "revision": True}), "non-negative integer"),
    (orjson.dumps({**MESSAGE, "started_at": "yesterday"}), "started_at"),
    (orjson.dumps({k: v for k, v in MESSAGE.items() if k != "started_at"}), "started_at"),
])
def test_bad_values_become_dead_letters(value: bytes | None, reason: str) -> None:
    """Undecodable or incomplete values are dead letters with a reason, never exceptions."""
    routed = route_record(rec(value), "messages")
    assert isinstance(routed, DeadLetter)
    assert reason in routed.reason
    assert routed.stage == "decode"
    assert routed.record.offset == 7


@pytest.mark.parametrize(("text", "iso"), [
    ("2024-03-17T10:00:00Z", "2024-03-17T10:00:00+00:00"),
    ("2024-03-17T10:00:00", "2024-03-17T10:00:00+00:00"),
    ("2024-03-17T17:00:00+07:00", "2024-03-17T10:00:00+00:00"),
])
def test_parse_time_normalises_to_utc(text: str, iso: str) -> None:
    """Times with a zone are converted to UTC; naive times are taken as UTC."""
    parsed = parse_time(text)
    assert parsed is not None
    assert parsed.isoformat() == iso


@pytest.mark.parametrize("value", [None, 17, "", "17/03/2024"])
def test_parse_time_refuses_non_times(value: object) -> None:
    """Anything that is not an ISO 8601 string yields None."""
    assert parse_time(value) is None
