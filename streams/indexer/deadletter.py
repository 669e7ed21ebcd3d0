"""How a dead letter is written to the dead-letter topic. Pure.

Value: JSON with the reason, the stage (``decode`` or ``index``), where the record came from,
and the original value (as text when it is UTF-8, else base64), so it can be fixed and replayed.
Key: the original key. Headers carry the reason and origin for tools that read only headers.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from streams.indexer.records import DeadLetter


def encode_dead_letter(letter: DeadLetter, now: datetime | None = None
                       ) -> tuple[bytes | None, bytes, list[tuple[str, str | bytes | None]]]:
    """(key, value, headers) of the dead-letter message for ``letter``."""
    record = letter.record
    body: dict[str, object] = {
        "reason": letter.reason,
        "stage": letter.stage,
        "component": "indexer",
        "dead_lettered_at": (now or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        "source": {"topic": record.topic, "partition": record.partition,
                   "offset": record.offset, "timestamp_ms": record.timestamp_ms},
    }
    if record.value is not None:
        try:
            body["value"] = record.value.decode("utf-8")
        except UnicodeDecodeError:
            body["value_b64"] = base64.b64encode(record.value).decode("ascii")
    headers: list[tuple[str, str | bytes | None]] = [
        ("esatrack-reason", letter.reason.encode("utf-8")[:1000]),
        ("esatrack-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
    ]
    return record.key, orjson.dumps(body), headers
