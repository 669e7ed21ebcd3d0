"""The record schemas (``schemas/*.schema.json``), loaded as data: never duplicated in code."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Final

import orjson

from streams.errors import EsatrackError

SCHEMA_DIR: Final = Path(__file__).resolve().parents[2] / "schemas"
"""``schemas/`` at the root of the repository (the package is installed editable)."""

SCHEMA_FILES: Final = {"message": "message.schema.json", "connection": "connection.schema.json"}


@cache
def load_schema(record_type: str) -> dict[str, Any]:
    """The JSON Schema of ``message`` or ``connection`` records."""
    name = SCHEMA_FILES.get(record_type)
    if name is None:
        raise EsatrackError(f"no schema for record type {record_type!r}; "
                            f"known: {', '.join(SCHEMA_FILES)}")
    path = SCHEMA_DIR / name
    try:
        value = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise EsatrackError(f"cannot read the record schema {path} ({exc}); run from a "
                            "checkout of esatrack that has schemas/") from exc
    if not isinstance(value, dict):
        raise EsatrackError(f"{path}: not a JSON Schema object")
    return value
