"""The raw archive's hash chain: building links, skipping redeliveries, verifying, detecting
edits, deletions and forks."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from streams.archive.chain import (
    ChainBuilder,
    ChainHead,
    RawLine,
    genesis_hash,
    line_bytes,
    line_fields,
)
from streams.archive.verify import verify_chain
from streams.indexer.raw import plan_raw, to_raw_line
from streams.indexer.records import DeadLetter, KafkaRecord

DAY_MS = 1_710_633_600_000  # 2024-03-17T00:00:00Z


def raw(offset: int, line: bytes, host: str = "esa1", partition: int = 0) -> RawLine:
    return RawLine(host=host, received_ms=DAY_MS + offset * 1000, partition=partition,
                   offset=offset, line=line)


def build(lines: list[bytes], host: str = "esa1") -> list[dict[str, Any]]:
    builder = ChainBuilder()
    builder.set_head((host, "2024-03-17"), None)
    return [builder.append(raw(n, line, host)) for n, line in enumerate(lines)]


LINES = [b"Info: New SMTP ICID 1 interface Data 1", b"Info: MID 5 ICID 1 From: <a@b.c>",
         b"Info: MID 5 ICID 1 RID 0 To: <d@e.f>", b"Info: Message finished MID 5 done"]


def test_links_follow_the_formula() -> None:
    """Each link stores seq, its predecessor's hash, and sha256(prev_hash + line)."""
    docs = build(LINES)
    prev = genesis_hash("esa1", "2024-03-17")
    for seq, (doc, line) in enumerate(zip(docs, LINES, strict=True), 1):
        assert doc["seq"] == seq
        assert doc["prev_hash"] == prev
        assert doc["hash"] == hashlib.sha256(prev.encode() + line).hexdigest()
        prev = doc["hash"]
    assert docs[0]["received_at"] == "2024-03-17T00:00:00.000Z"
    assert (docs[2]["partition"], docs[2]["offset"]) == (0, 2)


def test_genesis_differs_per_host_and_day() -> None:
    """A chain cannot be replayed as another appliance's or another day's."""
    assert len({genesis_hash("esa1", "2024-03-17"), genesis_hash("esa2", "2024-03-17"),
                genesis_hash("esa1", "2024-03-18")}) == 3


def test_intact_chain_verifies() -> None:
    """An untouched chain verifies, with its head hash and link count."""
    docs = build(LINES)
    report = verify_chain("esa1", "2024-03-17", docs)
    assert report.intact
    assert (report.links, report.lines, report.head_hash) == (4, 4, docs[-1]["hash"])


def test_packed_record_is_one_link_of_several_lines() -> None:
    """A record holding LF-separated lines (a packing shipper) is one link over its exact
    bytes; verify counts its lines, and an edit of any one of them breaks the link."""
    packed = b"\n".join(LINES[:3])
    docs = build([packed, LINES[3]])
    assert docs[0]["line"] == packed.decode()
    report = verify_chain("esa1", "2024-03-17", docs)
    assert (report.intact, report.links, report.lines) == (True, 2, 4)
    docs[0]["line"] = docs[0]["line"].replace("d@e.f", "x@e.f")
    broken = verify_chain("esa1", "2024-03-17", docs)
    assert broken.problem is not None
    assert (broken.problem.seq, broken.problem.kind, broken.lines) == (1, "altered", 0)


def tamper_line(docs: list[dict[str, Any]]) -> None:
    docs[2]["line"] = docs[2]["line"].replace("d@e.f", "x@e.f")


def tamper_hash(docs: list[dict[str, Any]]) -> None:
    docs[2]["hash"] = "0" * 64


def delete_middle(docs: list[dict[str, Any]]) -> None:
    del docs[1]


def delete_first(docs: list[dict[str, Any]]) -> None:
    del docs[0]


def relink(docs: list[dict[str, Any]]) -> None:
    docs[2]["prev_hash"] = docs[0]["hash"]


def fork(docs: list[dict[str, Any]]) -> None:
    docs.insert(2, dict(docs[1], offset=99))


def drop_seq(docs: list[dict[str, Any]]) -> None:
    del docs[3]["seq"]


@pytest.mark.parametrize(("tamper", "kind", "seq"), [
    (tamper_line, "altered", 3),
    (tamper_hash, "altered", 3),
    (delete_middle, "missing", 2),
    (delete_first, "missing", 1),
    (relink, "relinked", 3),
    (fork, "duplicate", 2),
    (drop_seq, "malformed", 4),
])
def test_verify_finds_the_first_defect(tamper: Any, kind: str, seq: int) -> None:
    """Edits, deletions, relinks, forks and malformed links are reported at the first bad link."""
    docs = build(LINES)
    tamper(docs)
    report = verify_chain("esa1", "2024-03-17", docs)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (kind, seq)


def test_chain_of_another_host_does_not_verify() -> None:
    """Links built for one appliance fail verification as another's (genesis differs)."""
    report = verify_chain("esa2", "2024-03-17", build(LINES, host="esa1"))
    assert report.problem is not None
    assert report.problem.kind == "relinked"


@pytest.mark.parametrize("line", [b"plain ascii", "ไทย UTF-8".encode(), b"latin1 \xe9\xff"])
def test_line_storage_round_trips_exact_bytes(line: bytes) -> None:
    """Lines are stored so the exact bytes come back (base64 kept for non-UTF-8)."""
    fields = line_fields(line)
    assert line_bytes(dict(fields)) == line
    assert ("line_b64" in fields) is (line == b"latin1 \xe9\xff")


def test_non_utf8_chain_verifies_and_detects_text_edit() -> None:
    """A non-UTF-8 line verifies by its bytes, and editing its text form is still caught."""
    docs = build([b"ok", b"bad \xff byte"])
    assert verify_chain("esa1", "2024-03-17", docs).intact
    docs[1]["line"] = "bad X byte"
    report = verify_chain("esa1", "2024-03-17", docs)
    assert report.problem is not None
    assert report.problem.kind == "altered"


def test_recovered_head_continues_the_chain() -> None:
    """A builder given a recovered head extends the same chain as an uninterrupted one."""
    whole = build(LINES)
    second = ChainBuilder()
    second.set_head(("esa1", "2024-03-17"), ChainHead(2, whole[1]["hash"]))
    tail = [second.append(raw(n, LINES[n])) for n in (2, 3)]
    assert tail == whole[2:]


def kafka(offset: int, line: bytes, key: bytes | None = b"esa1") -> KafkaRecord:
    return KafkaRecord("esa.raw", 0, offset, key, line, DAY_MS + offset * 1000)


def test_plan_skips_archived_and_redelivered_lines() -> None:
    """Lines already archived, or repeated within the batch, take no new link."""
    pairs = []
    for offset, line in [(0, LINES[0]), (1, LINES[1]), (1, LINES[1]), (2, LINES[2])]:
        line_or_dead = to_raw_line(kafka(offset, line), "esa")
        assert isinstance(line_or_dead, RawLine)
        pairs.append((kafka(offset, line), line_or_dead))
    builder = ChainBuilder()
    builder.set_head(("esa1", "2024-03-17"), ChainHead(1, "h1"))
    archived = {("esa-raw-2024.03.17", pairs[0][1].doc_id)}
    plan = plan_raw(pairs, builder, archived)
    docs = [orjson.loads(a.source) for a in plan.actions]
    assert [(a.doc_id, a.op) for a in plan.actions] == [
        (pairs[1][1].doc_id, "create"), (pairs[3][1].doc_id, "create")]
    assert [(d["topic"], d["partition"], d["offset"]) for d in docs] == [
        ("esa.raw", 0, 1), ("esa.raw", 0, 2)]
    assert [d["seq"] for d in docs] == [2, 3]
    assert docs[0]["prev_hash"] == "h1"
    assert [line.offset for line in plan.already] == [0, 1]


def test_same_position_in_another_topic_or_with_other_bytes_is_not_taken_as_archived() -> None:
    """The document id is the Kafka position plus a digest of topic and bytes: a redelivery
    keeps its id, while a record of another raw topic (or of the topic created again) at the
    same partition and offset gets its own, so it is archived instead of skipped."""
    first = to_raw_line(kafka(0, LINES[0]), "esa")
    again = to_raw_line(kafka(0, LINES[0]), "esa")
    other_topic = to_raw_line(KafkaRecord("esa.raw.v2", 0, 0, b"esa1", LINES[0], DAY_MS), "esa")
    other_bytes = to_raw_line(kafka(0, LINES[1]), "esa")
    assert isinstance(first, RawLine) and isinstance(again, RawLine)
    assert isinstance(other_topic, RawLine) and isinstance(other_bytes, RawLine)
    assert first.doc_id == again.doc_id
    assert first.doc_id.startswith("0-0-")
    assert len({first.doc_id, other_topic.doc_id, other_bytes.doc_id}) == 3
    builder = ChainBuilder()
    builder.set_head(("esa1", "2024-03-17"), None)
    plan = plan_raw([(kafka(0, LINES[1]), other_bytes)], builder,
                    {(first.index, first.doc_id)})
    assert [a.doc_id for a in plan.actions] == [other_bytes.doc_id]
    assert plan.already == []


def test_raw_record_without_key_uses_default_host() -> None:
    """A raw record without a key is archived under the default appliance name."""
    line = to_raw_line(kafka(0, b"x", key=None), "esa-default")
    assert isinstance(line, RawLine)
    assert line.host == "esa-default"
    assert line.index == "esa-raw-2024.03.17"


def test_empty_raw_record_is_a_dead_letter() -> None:
    """An empty raw value is not archived but dead-lettered with a reason."""
    assert isinstance(to_raw_line(kafka(0, b""), "esa"), DeadLetter)
