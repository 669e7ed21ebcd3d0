"""Helpers for the correlator tests: lines in (syslog framed, by appliance), records out.

Every record any helper sees is validated against the schemas in ``schemas/`` (loaded, never
copied), so each test also checks that what the engine emits is a valid record.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in dev deps
from referencing import Registry, Resource

from streams.correlate import Correlator, Record
from streams.correlate.schema import load_schema
from streams.events import Event
from streams.parse import Parser

T0 = float(calendar.timegm((2024, 3, 18, 10, 0, 0, 0, 0, 0)))
"""2024-03-18T10:00:00Z: time 0 of every scenario."""

Line = tuple[float, str] | tuple[float, str, str]
"""(seconds after T0, body) or (seconds after T0, body, appliance)."""


def iso(seconds: float) -> str:
    """The ISO form records use for ``T0 + seconds`` (whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + seconds))


def frame(line: Line) -> bytes:
    """One RFC 3164 line with the appliance as host."""
    host = line[2] if len(line) == 3 else "esa"
    stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(T0 + line[0]))
    return f"<22>{stamp} {host} mail_logs: Info: {line[1]}".encode()


def parse(lines: Iterable[Line | bytes]) -> list[Event]:
    """Events of the lines (framed here unless already bytes), parsed as a stream."""
    parser = Parser(default_host="esa", year=2024)
    raw = [item if isinstance(item, bytes) else frame(item) for item in lines]
    return list(parser.parse_lines(raw, received_at=T0))


@cache
def _validators() -> dict[str, jsonschema.protocols.Validator]:
    schemas = {name: load_schema(name) for name in ("message", "connection")}
    registry: Registry[Any] = Registry().with_resources(
        [(schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()]
    )
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return {name: jsonschema.Draft202012Validator(schema, registry=registry,
                                                  format_checker=checker)
            for name, schema in schemas.items()}


def validate(record: Record) -> None:
    """Fail with the first schema error of ``record``."""
    validator = _validators()[record["type"]]
    errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise AssertionError(f"{record['type']} record invalid at {first.json_path}: "
                             f"{first.message}\n{record}")


@dataclass
class Run:
    """What one run of the engine emitted."""

    emitted: list[Record] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Record]:
        """Record id -> its last emitted revision."""
        out: dict[str, Record] = {}
        for record in self.emitted:
            out[record["id"]] = record
        return out

    def revisions(self, record_type: str, ident: int, host: str = "esa") -> list[Record]:
        """Every emitted revision of one message (by MID) or connection (by ICID)."""
        key = "mid" if record_type == "message" else "icid"
        return [r for r in self.emitted
                if r["type"] == record_type and r[key] == ident and r["host"] == host]

    def one(self, record_type: str, ident: int, host: str = "esa") -> Record:
        """The final revision of the only record of that message/connection."""
        ids = {r["id"] for r in self.revisions(record_type, ident, host)}
        assert len(ids) == 1, f"expected one {record_type} {ident} on {host}, got {len(ids)}"
        return self.final[ids.pop()]


def run_events(events: Sequence[Event], engine: Correlator | None = None,
               flush: bool = True, check: bool = True) -> Run:
    """Apply ``events`` (then flush); every emitted record is validated (unless ``check`` is
    false: property tests compare runs, the scenario tests validate)."""
    engine = engine or Correlator()
    result = Run()
    for event in events:
        result.emitted.extend(engine.apply(event))
    if flush:
        result.emitted.extend(engine.flush())
    if check:
        for record in result.emitted:
            validate(record)
    return result


def run_lines(lines: Iterable[Line | bytes], **options: Any) -> Run:
    """Parse and correlate ``lines`` with an engine built from ``options``."""
    return run_events(parse(lines), Correlator(**options))


def get(record: Record, path: str) -> Any:
    """``recipients.0.status`` -> record["recipients"][0]["status"]."""
    value: Any = record
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value

