"""Bytes on the wire: record values, record keys and dead letters. Pure functions.

Record values are the engine's record dicts as JSON (orjson); the key is the record id, so
a revision of a record replaces the earlier one at the sink. A dead letter keeps the raw line
byte for byte: as text when it is UTF-8, else base64 (``line_b64``), and says where it came from.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def encode_record(record: Mapping[str, Any]) -> bytes:
    """The record as compact JSON."""
    return orjson.dumps(record, option=_OPTIONS)


def decode_record(value: bytes) -> dict[str, Any]:
    """A record value read back from the output topics."""
    record = orjson.loads(value)
    if not isinstance(record, dict):
        raise ValueError(f"a record is a JSON object, got {type(record).__name__}")
    return record


def encode_dead_letter(
    *,
    reason: str,
    raw: bytes,
    appliance: str | None,
    topic: str,
    partition: int,
    offset: int,
    received_at: float | None,
) -> bytes:
    """A dead letter for a line that could not be understood: reason, raw line, origin."""
    letter: dict[str, Any] = {
        "reason": reason,
        "appliance": appliance,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "received_at": received_at,
    }
    try:
        letter["line"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        letter["line_b64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(letter)


def dead_letter_line(letter: Mapping[str, Any]) -> bytes:
    """The raw line a dead letter carries, byte for byte."""
    if "line_b64" in letter:
        return base64.b64decode(letter["line_b64"])
    return str(letter["line"]).encode("utf-8")
