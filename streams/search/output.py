"""Result rows and their formats (table, JSON Lines, CSV), written as the hits stream in.

Pure apart from writing to the given text stream: no column widths are computed from the whole
result, so a million rows never sit in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TextIO

import orjson

Record = Mapping[str, Any]


class Format(StrEnum):
    """Output formats of ``esatrack search``."""

    TABLE = "table"
    JSONL = "jsonl"
    CSV = "csv"


LAST_STATE: Final[dict[str, str]] = {
    "delivered": "Message successfully delivered",
    "bounced": "Message bounced",
    "partially_delivered": "Message delivered to some recipients, bounced for others",
    "quarantined": "Message quarantined",
    "dropped": "Message dropped",
    "aborted": "Message aborted",
    "rewritten": "Message rewritten (continues as a new MID)",
    "in_flight": "Message in flight",
}

MESSAGE_COLUMNS: Final = (
    "time", "host", "mid", "sender", "recipients", "subject", "last_state",
    "message_id", "icid", "direction", "client_ip", "tags", "id",
)
CONNECTION_COLUMNS: Final = (
    "time", "host", "icid", "client_ip", "rdns", "action", "sender_group", "sbrs", "id",
)

_TABLE_WIDTHS: Final[dict[str, int]] = {
    "time": 20, "host": 12, "mid": 10, "icid": 10, "sender": 30, "recipients": 30,
    "subject": 30, "last_state": 32, "client_ip": 15, "rdns": 30, "action": 9,
    "sender_group": 16, "sbrs": 5,
}
_MESSAGE_TABLE: Final = ("time", "host", "mid", "sender", "recipients", "subject", "last_state")
_CONNECTION_TABLE: Final = ("time", "host", "icid", "client_ip", "rdns", "action", "sbrs")


def to_datetime(value: Any) -> datetime | None:
    """A record time (epoch seconds or milliseconds, or ISO 8601) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # epoch millis vs seconds
        return datetime.fromtimestamp(seconds, UTC)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_time(value: Any) -> str:
    """``2024-03-17 10:00:01`` (UTC) for a record time, or empty when there is none."""
    moment = to_datetime(value)
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def last_state(record: Record) -> str:
    """The SMA "last state" text of a message record."""
    status = str(record.get("status") or "")
    text = LAST_STATE.get(status, status.replace("_", " ").capitalize() or "Unknown")
    if status == "quarantined" and record.get("quarantines"):
        names = [str(q.get("name") if isinstance(q, Mapping) else q) for q in record["quarantines"]
                 if not (isinstance(q, Mapping) and q.get("released_at"))]
        if names:
            text += " (" + ", ".join(names) + ")"
    return text


def message_row(record: Record) -> dict[str, str]:
    """One result row of a message record (all columns as text)."""
    client = record.get("client") or {}
    recipients = record.get("recipients") or []
    return {
        "time": format_time(record.get("started_at")),
        "host": str(record.get("host") or ""),
        "mid": _text(record.get("mid")),
        "sender": str(record.get("sender") or ""),
        "recipients": ", ".join(str(r.get("address") or "") for r in recipients),
        "subject": str(record.get("subject") or ""),
        "last_state": last_state(record),
        "message_id": str(record.get("message_id") or ""),
        "icid": _text(record.get("icid")),
        "direction": str(record.get("direction") or ""),
        "client_ip": str(client.get("ip") or ""),
        "tags": " ".join(str(t) for t in record.get("tags") or []),
        "id": str(record.get("id") or ""),
    }


def connection_row(record: Record) -> dict[str, str]:
    """One result row of a connection record (all columns as text)."""
    client = record.get("client") or {}
    return {
        "time": format_time(record.get("started_at")),
        "host": str(record.get("host") or ""),
        "icid": _text(record.get("icid")),
        "client_ip": str(client.get("ip") or ""),
        "rdns": str(client.get("rdns") or ""),
        "action": str(record.get("action") or ""),
        "sender_group": str(client.get("sender_group") or ""),
        "sbrs": _text(client.get("sbrs")),
        "id": str(record.get("id") or ""),
    }


def write_results(
    records: Iterable[Record], out: TextIO, fmt: Format, *, connections: bool = False
) -> int:
    """Write ``records`` to ``out`` in ``fmt`` as they come; return how many were written."""
    row: Callable[[Record], dict[str, str]] = connection_row if connections else message_row
    count = 0
    if fmt is Format.JSONL:
        for record in records:
            out.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode() + "\n")
            count += 1
        return count
    if fmt is Format.CSV:
        columns = CONNECTION_COLUMNS if connections else MESSAGE_COLUMNS
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(row(record))
            count += 1
        return count
    table: tuple[str, ...] = _CONNECTION_TABLE if connections else _MESSAGE_TABLE
    out.write(_table_line({c: c.upper().replace("_", " ") for c in table}, table) + "\n")
    for record in records:
        out.write(_table_line(row(record), table) + "\n")
        count += 1
    return count


def _table_line(values: Mapping[str, str], columns: tuple[str, ...]) -> str:
    cells = []
    for column in columns:
        width = _TABLE_WIDTHS[column]
        text = " ".join(values[column].split())  # no line breaks inside a row
        if len(text) > width:
            text = text[: width - 1] + "…"
        cells.append(text.ljust(width))
    return "  ".join(cells).rstrip()


def _text(value: Any) -> str:
    return "" if value is None else str(value)
