"""The pure core of a worker: raw lines of one ``esa.raw`` partition in, what to produce out.

A :class:`PartitionProcessor` owns one correlation engine for one partition of ``esa.raw``
(all lines of an appliance are in one partition, so the engine sees each appliance's lines in
order). It parses, correlates, and answers with an :class:`Output`: records for
``esa.messages`` and ``esa.connections``, dead letters for ``esa.unparsed``, and the state keys
that changed (new bytes, or ``None`` when a key's state is gone) for the table and its
changelog. No I/O here: the faust agent moves the bytes; the tests drive this directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams import events as ev
from streams.correlate import Correlator
from streams.parse import Parser
from streams.settings import Settings
from streams.worker.codec import encode_dead_letter, encode_record

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RawLine:
    """One message of ``esa.raw``."""

    key: bytes | None
    """The appliance as the shipper keyed it (may be empty)."""
    value: bytes | None
    """The value as shipped: one line, or several LF-separated (a batching shipper)."""
    timestamp: float
    """The Kafka timestamp, epoch seconds: when the shipper produced the line."""
    offset: int
    """The offset in its partition (for dead letters)."""


@dataclass(slots=True)
class Output:
    """What one call of :class:`PartitionProcessor` asks the worker to produce."""

    messages: list[tuple[bytes, bytes]] = field(default_factory=list)
    """``(record id, record JSON)`` for the messages topic."""
    connections: list[tuple[bytes, bytes]] = field(default_factory=list)
    """``(record id, record JSON)`` for the connections topic."""
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    """``(appliance, dead letter JSON)`` for the dead-letter topic."""
    state: dict[bytes, bytes | None] = field(default_factory=dict)
    """Changed state keys: the new exported bytes, or ``None`` for a key that is gone."""
    lines: int = 0
    unknown: int = 0
    """Lines the parser did not understand (each one is also a dead letter)."""


def _lines_of(value: bytes) -> list[bytes]:
    return [part.removesuffix(b"\r") for part in value.split(b"\n") if part and part != b"\r"]


def split_value(key: bytes | None, value: bytes, timestamp: float, offset: int) -> list[RawLine]:
    """The lines of a value that holds several, LF-separated (CR before LF and empty lines
    dropped), as :meth:`PartitionProcessor.process` reads them; one line per value is the usual
    case and needs no call."""
    return [RawLine(key, part, timestamp, offset) for part in _lines_of(value)]


_MAX_PARSERS = 1000
"""Line readers kept per partition (one per appliance key); beyond it, garbage keys share one."""

CONTEXT_PREFIX = b"\x00file|"
"""Table keys of the file context of an appliance (not engine keys: those never start with NUL)."""

_DAY = 86400.0


class _Feed:
    """An endless iterator whose next item is whatever was put in last."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line: bytes = b""

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> bytes:
        return self.line


class _LineReader:
    """Parses the lines of one appliance key one at a time, keeping the file context.

    Appliance log files (pushed, then replayed into Kafka line by line) carry a
    ``Time offset from UTC`` header that dates the lines after it; ``Parser.parse_lines``
    keeps that context, ``parse_line`` cannot. So each key has a ``parse_lines`` generator fed
    one line at a time. The last context line (the offset header, or ``Begin Logfile`` that
    clears it) is remembered and saved in the table, so a restored worker re-establishes the
    context by feeding it again. The generator is renewed each new day of Kafka time, so
    year-less syslog stamps are dated from a current receipt time.
    """

    __slots__ = ("_feed", "_gen", "_parser", "context", "context_changed", "day")

    def __init__(self, parser: Parser) -> None:
        self._parser = parser
        self._feed = _Feed()
        self._gen: Iterator[ev.Event] | None = None
        self.day = -1.0
        self.context: bytes | None = None
        self.context_changed = False

    def _renew(self, received_at: float) -> Iterator[ev.Event]:
        gen = self._parser.parse_lines(self._feed, received_at)
        if self.context is not None:
            self._feed.line = self.context
            next(gen)
        self._gen = gen
        self.day = received_at // _DAY
        return gen

    def parse(self, raw: bytes, received_at: float) -> ev.Event:
        gen = self._gen
        if gen is None or received_at // _DAY != self.day:
            gen = self._renew(received_at)
        self._feed.line = raw
        event = next(gen)
        if event.kind == ev.SYSTEM and ("utc_offset" in event.data
                                        or event.body.startswith("Begin Logfile")):
            self.context = raw
            self.context_changed = True
        return event

    def restore_context(self, line: bytes) -> None:
        self.context = line
        self._gen = None


class PartitionProcessor:
    """Parser and correlation engine of one ``esa.raw`` partition.

    Lines that carry no host of their own are filed under the appliance the shipper keyed
    them with (one parser per key, whose default host is that key). Time is the engine's log
    time; :meth:`tick` moves an idle appliance's log time on by the wall time elapsed since
    its last line, so the records of an appliance that went quiet still come out after the
    grace period (and open state still expires).
    """

    def __init__(self, settings: Settings, partition: int, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.partition = partition
        self.topic = settings.topic_raw
        self._settings = settings
        self._clock = clock
        self.engine = Correlator.from_settings(settings, track_dirty=True)
        self._default = settings.default_host.encode()
        self._readers: dict[bytes, _LineReader] = {}
        self._seen: dict[str, tuple[float, float]] = {}
        """appliance -> (its watermark after its last line, wall time then)."""

    @classmethod
    def factory(cls, settings: Settings) -> Callable[[int], PartitionProcessor]:
        """Builds the processor of a partition number (what the worker app needs)."""

        def make(partition: int) -> PartitionProcessor:
            return cls(settings, partition)

        return make

    # --- driving ----------------------------------------------------------------------------

    def process(self, lines: Sequence[RawLine]) -> Output:
        """Parse and correlate messages of this partition, in order; a value holding several
        LF-separated lines (a batching shipper) is read as those lines (see :func:`split_value`),
        split here rather than into one :class:`RawLine` each, which costs per line."""
        out = Output()
        engine = self.engine
        hosts: set[str] = set()
        count = 0
        for line in lines:
            key = line.key or self._default
            value = line.value if line.value is not None else b""
            reader = self._reader(key)
            parts: Sequence[bytes] = _lines_of(value) if b"\n" in value else (value,)
            count += len(parts)
            for raw in parts:
                event = reader.parse(raw, line.timestamp)
                if event.kind == ev.UNKNOWN:
                    out.unknown += 1
                    self._dead_letter(out, line, raw, key,
                                      str(event.data.get("reason", "unknown")))
                try:
                    records = engine.apply(event)
                except Exception as exc:  # an engine bug must not stop the stream: keep it
                    log.exception("partition %d offset %d: correlation failed",
                                  self.partition, line.offset)
                    self._dead_letter(out, line, raw, key, f"correlation failed: {exc!r}")
                    continue
                if records:
                    _route(records, out)
                if event.host is not None:
                    hosts.add(event.host)
        out.lines = count
        now = self._clock()
        for host in hosts:
            wm = engine.watermark(host)
            if wm is not None:
                self._seen[host] = (wm, now)
        self._collect_state(out)
        return out

    def tick(self, now: float) -> Output:
        """Advance idle appliances by the wall time since their last line; what came due."""
        out = Output()
        engine = self.engine
        for host, (wm, seen_at) in self._seen.items():
            target = wm + (now - seen_at)
            if target > wm:
                _route(engine.advance(target, host), out)
        self._collect_state(out)
        return out

    def load(self, items: Iterator[tuple[bytes, bytes]]) -> int:
        """Restore a fresh engine from the table's entries; the number of keys restored."""
        engine = self.engine
        count = 0
        names: set[str] = set()
        for key, value in items:
            if key.startswith(CONTEXT_PREFIX):
                self._reader(key[len(CONTEXT_PREFIX):]).restore_context(value)
                count += 1
                continue
            text = key.decode("utf-8")
            engine.restore(text, value)
            names.add(text.split("|", 1)[0])
            count += 1
        now = self._clock()
        for name in names:
            wm = engine.watermark(name)
            if wm is not None:
                self._seen[name] = (wm, now)
        engine.dirty_keys()  # restored state is already in the table
        return count

    def open_counts(self) -> tuple[int, int]:
        """Open messages and open connections held by the engine."""
        counts = self.engine.open_counts()
        return counts["messages"], counts["connections"]

    # --- internals --------------------------------------------------------------------------

    def _reader(self, key: bytes) -> _LineReader:
        reader = self._readers.get(key)
        if reader is None:
            if len(self._readers) >= _MAX_PARSERS:
                key = self._default
                reader = self._readers.get(key)
            if reader is None:
                host = key.decode("utf-8", "replace") or self._settings.default_host
                reader = self._readers[key] = _LineReader(
                    Parser.from_settings(self._settings, default_host=host)
                )
        return reader

    def _dead_letter(self, out: Output, line: RawLine, raw: bytes, key: bytes,
                     reason: str) -> None:
        out.dead_letters.append((key, encode_dead_letter(
            reason=reason,
            raw=raw,
            appliance=key.decode("utf-8", "replace"),
            topic=self.topic,
            partition=self.partition,
            offset=line.offset,
            received_at=line.timestamp,
        )))

    def _collect_state(self, out: Output) -> None:
        engine = self.engine
        for key in engine.dirty_keys():
            out.state[key.encode("utf-8")] = engine.export(key)
        for akey, reader in self._readers.items():
            if reader.context_changed:
                reader.context_changed = False
                out.state[CONTEXT_PREFIX + akey] = reader.context
        engine.retired_ids()  # only the offline command uses them; the list must not grow


def _route(records: Sequence[Mapping[str, Any]], out: Output) -> None:
    for record in records:
        pair = (str(record["id"]).encode("utf-8"), encode_record(record))
        if record["type"] == "message":
            out.messages.append(pair)
        else:
            out.connections.append(pair)
