"""Tracking search against the real OpenSearch: every criterion on a hand-written seed set with
near-misses, unlimited streaming, output formats and the details view."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs in dev deps
from opensearchpy import OpenSearch
from referencing import Registry, Resource

from streams.cli import main
from streams.search.criteria import Criteria, Direction, Event, Op, TextMatch
from streams.search.query import build_query, build_sort
from streams.search.show import fetch_message
from streams.search.stream import SearchFailed, stream_hits

pytestmark = pytest.mark.integration

IndexFactory = Callable[[str, Sequence[dict[str, Any]]], str]

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
DAY = "2024-03-17"
SHA = "ab" * 32


NAMES: dict[str, str] = {}
"""Record id -> the short name the test uses (m01, c1)."""

CLIENT: dict[str, Any] = {
    "ip": "10.0.0.1", "rdns": None, "rdns_verified": None, "sbrs": None, "sender_group": None,
    "flow": None, "interface": None, "country": None, "tls": None}


def record_id(name: str, prefix: str = "m") -> str:
    """A schema-shaped record id (``m-`` + 24 hex digits) for a short test name."""
    value = f"{prefix}-{name.encode().hex().rjust(24, '0')}"
    NAMES[value] = name
    return value


def msg(name: str, **fields: Any) -> dict[str, Any]:
    """A message record valid against schemas/message.schema.json, with quiet defaults;
    ``fields`` override (``client`` is merged into the default client)."""
    started = fields.get("started_at", f"{DAY}T12:00:00Z")
    record: dict[str, Any] = {
        "type": "message", "id": record_id(name), "host": "esa1", "mid": 1000 + int(name[1:]),
        "icid": 1, "revision": 1, "started_at": started, "finished_at": started,
        "updated_at": started, "complete": True, "expired": False, "status": "delivered",
        "sender": "nobody@quiet.example",
        "recipients": [rcpt("someone@quiet.example", "delivered")],
        "message_id": f"<{name}@quiet.example>", "subject": "Weekly report", "size": 1000,
        "attachments": [], "direction": "inbound", "policy": "DEFAULT", "auth_user": None,
        "verdicts": dict.fromkeys(("antispam", "antivirus", "virus_name", "amp", "graymail",
                                   "outbreak", "dlp", "spf", "dkim", "dmarc")),
        "quarantines": [], "tags": ["delivered"], "parent_mid": None, "child_mids": [],
        "events": [],
    }
    record["client"] = {**CLIENT, **fields.pop("client", {})}
    record.update(fields)
    return record


def rcpt(address: str, status: str, response: str | None = None) -> dict[str, Any]:
    return {"rid": 0, "address": address, "status": status, "dcid": None, "response": response,
            "updated_at": None}


def quarantine(name: str) -> dict[str, Any]:
    return {"name": name, "entered_at": f"{DAY}T12:00:00Z", "released_at": None}


SEED: list[dict[str, Any]] = [
    msg("m01", sender="Alice@Example.com", subject="Invoice 42", mid=101,
        message_id="<inv42@example.com>", client={"ip": "192.0.2.10"},
        recipients=[rcpt("bob@corp.example", "delivered")],
        attachments=[{"name": "Invoice.PDF", "sha256": SHA.upper()}],
        started_at=f"{DAY}T10:00:00Z"),
    msg("m02", sender="alice@example.com.evil.net", subject="Re: Invoice 42",
        client={"ip": "192.0.2.11"}, recipients=[rcpt("carol@corp.example", "hard_bounced")],
        tags=["hard_bounced"], status="bounced", started_at=f"{DAY}T10:05:00Z"),
    msg("m03", sender="malice@example.com", subject="", host="esa2",
        recipients=[rcpt("bob@corp.example", "soft_bounced"),
                    rcpt("dave@other.example", "delivered")],
        tags=["soft_bounced", "delivered"], status="partially_delivered",
        started_at=f"{DAY}T10:10:00Z"),
    msg("m04", sender="bob@corp.example", direction="outbound", mid=101, host="esa2",
        recipients=[rcpt("alice@example.com", "delivered")], tags=["virus_positive"],
        client={"ip": "198.51.100.5"}, started_at="2024-03-16T09:00:00Z"),
    msg("m05", recipients=[rcpt("x@y.example", "delivered"), rcpt("z@y.example", "hard_bounced")],
        tags=["delivered", "hard_bounced"], status="partially_delivered"),
    msg("m06", recipients=[rcpt("x@y.example", "hard_bounced")], tags=["hard_bounced"],
        status="bounced"),
    msg("m07", tags=["spam_positive", "spam_quarantine"], status="quarantined",
        quarantines=[quarantine("Spam")]),
    msg("m08", tags=["suspect_spam", "delivered"]),
    msg("m09", tags=["outbreak_quarantine"], status="quarantined",
        quarantines=[quarantine("Outbreak")]),
    msg("m10", tags=["dlp_violation", "delivered"], direction="outbound",
        message_id="bare-id@host.example"),
    msg("m11", subject="invoice 42",
        attachments=[{"name": "invoice.pdf.exe", "sha256": "cd" * 32}]),
    msg("m12", subject=None, mid=200, child_mids=[201], status="rewritten",
        events=[{"ts": f"{DAY}T12:00:00Z", "kind": "msg_start", "text": "Message 200 enqueued"},
                {"ts": f"{DAY}T12:00:02Z", "kind": "msg_rewrite", "text": "Rewritten as 201"}]),
    msg("m13", mid=201, parent_mid=200, started_at=f"{DAY}T12:00:01Z",
        recipients=[rcpt("final@dest.example", "delivered", "250 2.0.0 queued as 7")],
        events=[{"ts": f"{DAY}T12:00:01Z", "kind": "msg_start", "text": "Message 201 created"},
                {"ts": f"{DAY}T12:00:03Z", "kind": "dlv_done", "text": "Delivered (250 ok)"}]),
    msg("m14", mid=201, host="esa2"),  # same MID, other appliance: not lineage
    msg("m15", mid=201, started_at="2024-03-20T12:00:00Z"),  # MID reused days later
]


def record_validator(kind: str) -> Any:
    """A validator of schemas/<kind>.schema.json that resolves references between them."""
    schemas = [json.loads((SCHEMAS / f"{name}.schema.json").read_text())
               for name in ("message", "connection")]
    registry: Registry[Any] = Registry().with_resources(
        [(schema["$id"], Resource.from_contents(schema)) for schema in schemas])
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    return Draft202012Validator(schema, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_seed_records_follow_the_record_schema() -> None:
    """The hand-written seed is shaped exactly like the correlator's message records."""
    for record in SEED:
        record_validator("message").validate(record)


@pytest.fixture
def messages(seeded_index: IndexFactory) -> str:
    return seeded_index("messages", SEED)


def ids(client: OpenSearch, index: str, criteria: Criteria) -> set[str]:
    """The record ids ``criteria`` finds, streamed with a small page to exercise paging."""
    hits = stream_hits(client, index, build_query(criteria), build_sort(), page_size=3)
    with closing(hits):
        return {NAMES[hit["id"]] for hit in hits}


def _s(op: Op, value: str = "") -> TextMatch:
    return TextMatch(op, value)


D0 = datetime(2024, 3, 17, 10, 0, tzinfo=UTC)
D1 = datetime(2024, 3, 17, 10, 10, tzinfo=UTC)

CRITERIA: list[tuple[str, Criteria, set[str]]] = [
    ("sender is (case-insensitive)", Criteria(sender=_s(Op.IS, "alice@EXAMPLE.com")), {"m01"}),
    ("sender begins with", Criteria(sender=_s(Op.BEGINS, "Alice@example.com")), {"m01", "m02"}),
    ("sender contains", Criteria(sender=_s(Op.CONTAINS, "ALICE@example")),
     {"m01", "m02", "m03"}),
    ("recipient is", Criteria(recipient=_s(Op.IS, "bob@corp.example")), {"m01", "m03"}),
    ("recipient begins with", Criteria(recipient=_s(Op.BEGINS, "x@")), {"m05", "m06"}),
    ("recipient contains", Criteria(recipient=_s(Op.CONTAINS, "corp.exam")),
     {"m01", "m02", "m03"}),
    ("subject is", Criteria(subject=_s(Op.IS, "INVOICE 42")), {"m01", "m11"}),
    ("subject begins with", Criteria(subject=_s(Op.BEGINS, "re: inv")), {"m02"}),
    ("subject contains", Criteria(subject=_s(Op.CONTAINS, "voice 4")), {"m01", "m02", "m11"}),
    ("subject is empty (missing or empty string)", Criteria(subject=_s(Op.EMPTY)),
     {"m03", "m12"}),
    ("time range, end exclusive", Criteria(start=D0, end=D1), {"m01", "m02"}),
    ("sender IP", Criteria(sender_ip="192.0.2.10"), {"m01"}),
    ("sender IP network", Criteria(sender_ip="192.0.2.0/24"), {"m01", "m02"}),
    ("Message-ID typed without brackets", Criteria(message_id="inv42@example.com"), {"m01"}),
    ("Message-ID stored without brackets", Criteria(message_id="<bare-id@host.example>"),
     {"m10"}),
    ("MID", Criteria(mid=101), {"m01", "m04"}),
    ("MID on one host", Criteria(mid=101, hosts=("esa2",)), {"m04"}),
    ("attachment name (case-insensitive, whole name)", Criteria(attachment="invoice.pdf"),
     {"m01"}),
    ("attachment SHA-256", Criteria(attachment=SHA), {"m01"}),
    ("direction", Criteria(direction=Direction.OUTBOUND), {"m04", "m10"}),
    ("events OR-ed", Criteria(events=(Event.VIRUS_POSITIVE, Event.SUSPECT_SPAM)),
     {"m04", "m08"}),
    ("spam positive", Criteria(events=(Event.SPAM_POSITIVE,)), {"m07"}),
    ("outbreak quarantine", Criteria(events=(Event.OUTBREAK_QUARANTINE,)), {"m09"}),
    ("spam quarantine", Criteria(events=(Event.SPAM_QUARANTINE,)), {"m07"}),
    ("DLP violation", Criteria(events=(Event.DLP_VIOLATION,)), {"m10"}),
    ("hard bounced, any recipient", Criteria(events=(Event.HARD_BOUNCED,)),
     {"m02", "m05", "m06"}),
    ("soft bounced", Criteria(events=(Event.SOFT_BOUNCED,)), {"m03"}),
    ("recipient X hard-bounced: the same recipient, not another one",
     Criteria(recipient=_s(Op.IS, "x@y.example"), events=(Event.HARD_BOUNCED,)), {"m06"}),
    ("recipient X delivered", Criteria(recipient=_s(Op.IS, "x@y.example"),
                                       events=(Event.DELIVERED,)), {"m05"}),
    ("recipient soft-bounced while another was delivered",
     Criteria(recipient=_s(Op.IS, "dave@other.example"), events=(Event.SOFT_BOUNCED,)), set()),
    ("criteria combine (AND)",
     Criteria(sender=_s(Op.CONTAINS, "alice"), recipient=_s(Op.IS, "bob@corp.example")),
     {"m01", "m03"}),
]


@pytest.mark.parametrize(("name", "criteria", "expected"), CRITERIA,
                         ids=[c[0] for c in CRITERIA])
def test_each_criterion_finds_exactly_its_records(
    os_client: OpenSearch, messages: str, name: str, criteria: Criteria, expected: set[str]
) -> None:
    """Each tracking criterion finds exactly the expected seeded records, near-misses excluded."""
    assert ids(os_client, messages, criteria) == expected, name


def test_rejected_connections_only(os_client: OpenSearch, seeded_index: IndexFactory) -> None:
    """--rejected-only searches connection records: REJECT and TCPREFUSE, by IP and time."""
    def conn(name: str, action: str, ip: str, when: str) -> dict[str, Any]:
        return {"type": "connection", "id": record_id(name, "c"), "host": "esa1",
                "icid": int(name[1:]), "revision": 1, "started_at": when, "closed_at": when,
                "updated_at": when, "complete": True, "expired": False, "lost": False,
                "client": {**CLIENT, "ip": ip, "flow": action}, "action": action,
                "auth_user": None, "mids": [], "events": []}
    connections = [
        conn("c1", "REJECT", "192.0.2.10", f"{DAY}T10:00:00Z"),
        conn("c2", "ACCEPT", "192.0.2.10", f"{DAY}T10:01:00Z"),
        conn("c3", "TCPREFUSE", "203.0.113.9", f"{DAY}T10:02:00Z"),
        conn("c4", "REJECT", "192.0.2.10", "2024-03-15T10:00:00Z"),
        conn("c5", "RELAY", "192.0.2.10", f"{DAY}T10:03:00Z"),
    ]
    for record in connections:
        record_validator("connection").validate(record)
    index = seeded_index("connections", connections)
    assert ids(os_client, index, Criteria(rejected_only=True)) == {"c1", "c3", "c4"}
    assert ids(os_client, index, Criteria(rejected_only=True, sender_ip="192.0.2.10",
                                          start=D0)) == {"c1"}


def test_streaming_returns_every_match_in_order(
    os_client: OpenSearch, seeded_index: IndexFactory
) -> None:
    """More matches than max_result_window (10,000) all stream out, in order, none twice."""
    total = 13_000
    records = [{"type": "message", "id": f"r{n:06d}", "host": "esa1", "mid": n,
                "sender": "bulk@sender.example" if n % 10 else "other@sender.example",
                # several records share a second: the id breaks the tie
                "started_at": 1_710_669_600_000 + (n // 3) * 1000} for n in range(total)]
    index = seeded_index("messages", records)
    criteria = Criteria(sender=TextMatch(Op.IS, "bulk@sender.example"))
    hits = stream_hits(os_client, index, build_query(criteria), build_sort(), page_size=1000)
    got = [hit["id"] for hit in hits]
    expected = [r["id"] for r in records if r["sender"] == "bulk@sender.example"]
    assert len(expected) > 10_000
    assert got == expected
    newest = stream_hits(os_client, index, build_query(criteria), build_sort(newest_first=True))
    assert [hit["id"] for hit in newest] == expected[::-1]
    assert pit_stats(os_client, index) == (2, 0), "one PIT per search, closed at the end"


def pit_stats(client: OpenSearch, index: str) -> tuple[int, int]:
    """(PITs closed so far, PITs open now) on ``index``: a unique index, so only this test's."""
    stats = client.indices.stats(index=index, metric="search")["_all"]["primaries"]["search"]
    return int(stats["point_in_time_total"]), int(stats["point_in_time_current"])


def test_pit_closed_on_error_and_on_early_stop(os_client: OpenSearch, messages: str) -> None:
    """Past the first page a PIT is open; it is closed when the consumer fails or stops early,
    and a refused search raises a clear error."""
    bad = {"term": {"client.ip": "not-an-ip"}}
    with pytest.raises(SearchFailed, match="refused"):
        list(stream_hits(os_client, messages, bad, build_sort()))

    class OutputBroke(Exception):
        pass

    with pytest.raises(OutputBroke):  # e.g. the disk filled while writing the CSV
        hits = stream_hits(os_client, messages, {"match_all": {}}, build_sort(), page_size=2)
        with closing(hits):
            for n, _hit in enumerate(hits):
                if n == 2:  # the second page came from a PIT
                    assert pit_stats(os_client, messages) == (0, 1)
                    raise OutputBroke
    assert pit_stats(os_client, messages) == (1, 0)

    hits = stream_hits(os_client, messages, {"match_all": {}}, build_sort(), page_size=2)
    with closing(hits):
        assert len([next(hits) for _ in range(3)]) == 3
        assert pit_stats(os_client, messages) == (1, 1)
    assert pit_stats(os_client, messages) == (2, 0)


def test_small_results_need_no_pit(os_client: OpenSearch, messages: str) -> None:
    """A result that fits in the first page is answered without opening a PIT; a larger one
    opens exactly one and closes it."""
    hits = stream_hits(os_client, messages, build_query(Criteria(mid=101)), build_sort(),
                       page_size=10)
    assert len(list(hits)) == 2
    assert pit_stats(os_client, messages) == (0, 0)
    assert len(list(stream_hits(os_client, messages, {"match_all": {}}, build_sort(),
                                page_size=10))) == len(SEED)
    assert pit_stats(os_client, messages) == (1, 0)


def test_missing_index_says_what_to_do(os_client: OpenSearch) -> None:
    """Searching an index that does not exist names it and the command that creates it."""
    with pytest.raises(SearchFailed, match="esatrack opensearch init"):
        list(stream_hits(os_client, "test-search-nothing-here", {"match_all": {}}, build_sort()))


def test_cli_csv_and_jsonl(messages: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`esatrack search` writes CSV with a header and JSON Lines of whole records."""
    assert main(["search", "--index", messages, "--sender", "alice@example",
                 "--sender-match", "begins", "--from", "2024-03-17", "--to", "2024-03-18",
                 "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [NAMES[row["id"]] for row in rows] == ["m01", "m02"]  # oldest first
    assert rows[0]["last_state"] == "Message successfully delivered"
    assert rows[1]["recipients"] == "carol@corp.example"
    assert "2 message records" in captured.err

    assert main(["search", "--index", messages, "--event", "dlp_violation",
                 "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [r for r in SEED if r["id"] == record_id("m10")]


def test_cli_table_to_file(messages: str, tmp_path: Path) -> None:
    """The table goes to --output when given, one line per match after the header."""
    out = tmp_path / "result.txt"
    assert main(["search", "--index", messages, "--mid", "101", "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].split()[:3] == ["TIME", "HOST", "MID"]
    assert len(lines) == 3
    assert "virus" not in lines[1]


def test_show_renders_lineage(os_client: OpenSearch, messages: str) -> None:
    """show fetches the child MID on the same host nearest in time and merges timelines."""
    root, lineage = fetch_message(os_client, messages, host="esa1", mid=200)
    assert NAMES[root["id"]] == "m12"
    assert [NAMES[r["id"]] for r in lineage] == ["m13"]  # not m14 (esa2) nor m15 (reused MID)
    root_by_id, lineage_from_child = fetch_message(os_client, messages, record_id=record_id("m13"))
    assert NAMES[root_by_id["id"]] == "m13"
    assert [NAMES[r["id"]] for r in lineage_from_child] == ["m12"]


def test_show_cli_prints_details(messages: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`esatrack show` prints the details view with both MIDs' events in time order."""
    assert main(["show", "--index", messages, record_id("m12")]) == 0
    text = capsys.readouterr().out
    order = ["[MID 200]  Message 200 enqueued", "[MID 201]  Message 201 created",
             "[MID 200]  Rewritten as 201", "[MID 201]  Delivered (250 ok)"]
    positions = [text.index(line) for line in order]
    assert positions == sorted(positions)
    assert "MID 201" in text.split("Related Messages")[1]


def test_show_unknown_message_is_a_clear_error(
    messages: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown id ends with exit code 2 and a message pointing at `esatrack search`."""
    assert main(["show", "--index", messages, "no-such-id"]) == 2
    assert "esatrack search" in capsys.readouterr().err
