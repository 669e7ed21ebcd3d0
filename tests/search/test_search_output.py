"""Result rows and the table, JSON Lines and CSV formats, no services."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from streams.search.output import Format, format_time, last_state, message_row, write_results

RECORD: dict[str, Any] = {
    "type": "message", "id": "esa1:50:1710669600", "host": "esa1", "mid": 50, "icid": 10,
    "started_at": "2024-03-17T10:00:01Z", "sender": "a@x.org",
    "recipients": [{"address": "b@y.org", "status": "delivered"},
                   {"address": "c@y.org", "status": "hard_bounced"}],
    "subject": "Hello,\nworld", "status": "partially_delivered", "message_id": "<m@x>",
    "client": {"ip": "192.0.2.7"}, "tags": ["delivered", "hard_bounced"],
    "direction": "inbound",
}


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-03-17T10:00:01Z", "2024-03-17 10:00:01"),
    ("2024-03-17T17:00:01+07:00", "2024-03-17 10:00:01"),
    (1710669601, "2024-03-17 10:00:01"),
    (1710669601.5, "2024-03-17 10:00:01"),
    (1710669601000, "2024-03-17 10:00:01"),
    (None, ""),
    ("garbage", ""),
])
def test_record_times_in_every_stored_form(value: Any, expected: str) -> None:
    """Record times print as UTC whether stored as ISO, epoch seconds or epoch millis."""
    assert format_time(value) == expected


@pytest.mark.parametrize(("record", "expected"), [
    ({"status": "delivered"}, "Message successfully delivered"),
    ({"status": "quarantined", "quarantines": [{"name": "Outbreak"}]},
     "Message quarantined (Outbreak)"),
    ({"status": "quarantined",
      "quarantines": [{"name": "Spam", "released_at": "2024-03-17T10:00:00Z"}]},
     "Message quarantined"),
    ({"status": "something_new"}, "Something new"),
    ({}, "Unknown"),
])
def test_last_state_text(record: dict[str, Any], expected: str) -> None:
    """The last state reads like the SMA's, naming quarantines the message is still in."""
    assert last_state(record) == expected


def test_message_row_joins_recipients() -> None:
    """A row carries every recipient of the message and the client IP."""
    row = message_row(RECORD)
    assert row["recipients"] == "b@y.org, c@y.org"
    assert row["client_ip"] == "192.0.2.7"
    assert row["time"] == "2024-03-17 10:00:01"


def test_jsonl_writes_each_record_whole() -> None:
    """JSON Lines output is one full record per line, readable back unchanged."""
    out = io.StringIO()
    assert write_results([RECORD, RECORD], out, Format.JSONL) == 2
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [RECORD, RECORD]


def test_csv_has_header_and_survives_commas_and_newlines() -> None:
    """CSV output has a header and quotes fields so commas and newlines round-trip."""
    out = io.StringIO()
    assert write_results([RECORD], out, Format.CSV) == 1
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 1
    assert rows[0]["subject"] == "Hello,\nworld"
    assert rows[0]["recipients"] == "b@y.org, c@y.org"
    assert rows[0]["mid"] == "50"


def test_table_is_one_line_per_record() -> None:
    """The table has a header and one line per record, line breaks in fields flattened."""
    out = io.StringIO()
    assert write_results([RECORD, RECORD], out, Format.TABLE) == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("TIME")
    assert "Hello, world" in lines[1]


def test_connection_csv_columns() -> None:
    """Rejected-connection results use the connection columns (action, client)."""
    out = io.StringIO()
    record = {"id": "c1", "host": "esa1", "icid": 9, "action": "REJECT",
              "started_at": 1710669601, "client": {"ip": "192.0.2.9", "sbrs": -5.2}}
    write_results([record], out, Format.CSV, connections=True)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert (row["action"], row["client_ip"], row["sbrs"]) == ("REJECT", "192.0.2.9", "-5.2")
