"""The parser: one raw line in, one :class:`~streams.events.Event` out, never an exception.

Framing first (where the time, host, tag and level are), then the body (see
:mod:`streams.parse.body`). The two framings that carry nearly all traffic, RFC 3164 syslog with a
level and the appliance's own file format, take the hot path: the header's end is found with
``str.find`` and its meaning is looked up by its text in a cache (a header is parsed by regex
once per second and appliance). Everything else (RFC 5424, relays' stacked headers, a year after
the time, octet counts, bare ``Level: body``, collector formats) goes through the slower general
path in :meth:`Parser._frame`.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from streams import events as ev
from streams.events import UNKNOWN, Event
from streams.parse.body import FIRST_WORD, parse_body, unknown_reason
from streams.parse.clock import MONTHS, Clock, local_epoch, offset_zone, zone

if TYPE_CHECKING:
    from streams.settings import Settings

LEVELS = frozenset({"Info", "Warning", "Debug", "Trace", "Critical", "Error", "Notice",
                    "Alert", "Emergency"})

# Hot path. Nearly every line is ``<PRI>Mon DD HH:MM:SS [host ]tag: Info: body`` or the file
# format ``Dow Mon D HH:MM:SS YYYY Info: body``. The header (everything up to the level) repeats
# for every line of the same second, appliance and level, so the parser finds its end with one
# ``str.find`` and looks its meaning (time, host, tag, level) up by its text; only a header not
# seen before is matched against these patterns (and cached only if it matched), so a body
# that happens to contain " Info: " can never make a wrong header valid.
_SYSLOG_HEADER = re.compile(
    r"<\d{1,3}>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?:([^\s:<\[]+) )?([^\s:<\[]+): "
    r"(Info|Warning|Debug|Trace|Critical): ")
_FILE_HEADER = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \d{4}) "
    r"(Info|Warning|Debug|Trace|Critical): ")
_LEVEL_MARK = re.compile(r" (?:Warning|Debug|Trace|Critical): ")
_HEADER_CACHE_LIMIT = 50_000
_new_event = object.__new__
"""Allocates an :class:`Event` without running ``__init__``: the hot path sets every slot."""

Framing = tuple[float | None, str, str | None, str]
"""(ts, host, tag, level) of a cached header."""

# General path.
_OCTET_COUNT = re.compile(r"\d{1,6} (?=<\d{1,3}>)")
_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424 = re.compile(
    r"1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?$", re.S)
_T_FILE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d) (\d{4})"
    r"(?: +|$)")
_T_3164 = re.compile(
    r"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d)(?:\.\d+)?(?: (\d{4}))?(?: +|$)")
_T_ISO = re.compile(
    r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)(?: +|$)")
_T_GMT = re.compile(  # the web proxy's "04 May 2020 12:59:57 (GMT-1:00)"
    r"(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) \(GMT([+-])(\d{1,2}):(\d\d)\)"
    r"(?: +|$)")
_MAX_STACK = 4
"""Relay headers unwrapped at most (each costs a regex pass)."""


class _Stamp(NamedTuple):
    """A time as framed, converted once the host (and so the zone) is known."""

    form: str  # "syslog" | "file" | "iso" | "epoch"
    mon: str = ""
    day: str = ""
    hms: str = ""
    year: str | None = None
    epoch: float | None = None
    iso: str = ""


class _Frame(NamedTuple):
    stamp: _Stamp | None
    host: str | None
    tag: str | None
    level: str | None
    body: str
    framed: bool


def _level(text: str) -> tuple[str | None, str]:
    """``Info: body`` -> (``Info``, ``body``); (None, text) if no level leads."""
    colon = text.find(":")
    if 3 < colon < 10 and text[:colon] in LEVELS and (len(text) == colon + 1
                                                       or text[colon + 1] == " "):
        return text[:colon], text[colon + 1:].lstrip(" ")
    return None, text


def _clean_tag(tag: str) -> str:
    bracket = tag.find("[")
    return tag[:bracket] if bracket > 0 else tag


def _tag_like(token: str) -> bool:
    return len(token) > 1 and token[-1] == ":" and "|" not in token and "=" not in token \
        and token[0] != "<"


def _cef_time(ext: dict[str, str], clock: Clock) -> float | None:
    """A CEF line without a syslog header is dated by its end (or start) time, local time."""
    for key in ("endTime", "EndTime", "end", "startTime", "StartTime", "start"):
        value = ext.get(key)
        if value:
            parts = value.split()
            if len(parts) == 5:  # "Thu Mar 18 08:04:46 2021"
                return clock.file(" ".join(parts[1:]))
    return None


class Parser:
    """Parses ESA log lines. Build once, call :meth:`parse_line` or :meth:`parse_lines`.

    ``default_host`` names the appliance of lines that carry no host; ``timezone`` is the IANA
    zone of appliances whose stamps carry none, ``host_timezones`` overrides it per appliance;
    ``year`` pins the year of year-less syslog stamps (else inferred from the receipt time);
    lines longer than ``max_line_bytes`` are cut and flagged ``truncated``.

    A parser keeps caches (headers, times, hosts) and is not thread-safe: use one per thread or
    worker.
    """

    def __init__(self, default_host: str = "esa", timezone: str = "UTC",
                 host_timezones: dict[str, str] | None = None, year: int | None = None,
                 max_line_bytes: int = 65536) -> None:
        self.default_host = sys.intern(default_host)
        self.year = year
        self.max_line_bytes = max(16, max_line_bytes)
        self._default_tz = zone(timezone)
        self._host_tz = {host: zone(name) for host, name in (host_timezones or {}).items()}
        self._clocks: dict[object, Clock] = {}
        self._hosts: dict[str, tuple[str, Clock]] = {}
        self._tags: dict[str, str] = {}
        # header text -> (ts, host, tag, level), one cache per file clock (None: no file
        # context); syslog headers depend on the year context, so they go when it changes
        self._headers: dict[Clock | None, dict[str, Framing]] = {None: {}}
        self._header_cache = self._headers[None]
        self._file_clock: Clock | None = None
        # (header, its framing, the cache it is valid for) of the last Info line on the hot
        # path; no cache (None) when there is none or the caches were cleared
        self._last: tuple[str, Framing | None, dict[str, Framing] | None] = ("", None, None)
        self._ctx_day = -1.0
        # (receipt year, receipt month); month 0 pins the year (no inference).
        self._ctx: tuple[int, int] = (year, 0) if year is not None else (1970, 1)
        self._default_entry = self._host_entry(self.default_host)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Parser:
        """A parser configured from the settings object (keyword overrides win)."""
        options: dict[str, Any] = {
            "default_host": settings.default_host, "timezone": settings.timezone,
            "host_timezones": dict(settings.host_timezones),
            "max_line_bytes": settings.max_line_bytes,
        }
        options.update(overrides)
        return cls(**options)

    # -- public API ------------------------------------------------------------------------

    def parse_line(self, raw: bytes | str, received_at: float | None = None) -> Event:  # noqa: PLR0915 -- inlined on purpose: one Python call per line is a measurable share of the cost
        """One line -> one event; ``received_at`` (epoch seconds, default now) dates syslog."""
        # The hot path is written out here rather than in a helper: a Python call per line is
        # a measurable share of the per-line cost (see docs/PERFORMANCE.md, "Parsing").
        if received_at is None:
            received_at = time.time()
        try:
            if received_at // 86400.0 != self._ctx_day and self.year is None:
                self._set_context(received_at)
            if type(raw) is bytes and len(raw) <= self.max_line_bytes:
                try:
                    text = raw.decode("utf-8").rstrip()
                    keep: bytes | None = None
                    truncated = False
                except UnicodeDecodeError:
                    text, keep, truncated = self._decode(raw)
            else:
                text, keep, truncated = self._decode(raw)

            last_header, framing, last_cache = self._last
            if last_cache is self._header_cache and text.startswith(last_header):
                # The previous Info header again (same second, appliance and level: most
                # lines): its " Info: " is this line's first too, so no find, slice or hash.
                end = len(last_header)
            else:
                framing = None
                end = text.find(" Info: ") + 7
                if end > 6:
                    header = text[:end]
                    framing = self._header_cache.get(header) or self._header(header)
                    if framing is not None:
                        self._last = (header, framing, self._header_cache)
                else:
                    end, framing = self._other_level(text)
            if framing is None:
                return self._parse_general(text, keep, truncated)
            ts, host, tag, level = framing
            body = text[end:]
            space = body.find(" ")
            if space == 0:
                body = body.lstrip(" ")
                space = body.find(" ")
            word = body[:space] if space > 0 else body
            handler = FIRST_WORD.get(word)
            kind, icid, mid, dcid, data = parse_body(body) if handler is None else handler(body)
            if kind == UNKNOWN and data.get("reason") == "unrecognised body":
                data["reason"] = unknown_reason(body, True)
            # Event(...) through the dataclass __init__ costs a third more than setting the
            # slots here (a Python frame per line); every field is set, as __init__ would
            # (tests/parse/test_parse_hot_path.py checks that against Event's fields).
            event = _new_event(Event)
            event.kind = kind
            event.ts = ts
            event.host = host
            event.body = body
            event.tag = tag
            event.level = level
            event.icid = icid
            event.mid = mid
            event.dcid = dcid
            event.data = data
            event.raw = keep
            event.truncated = truncated
            return event
        except Exception as exc:  # last-resort guard: a parser bug must not stop a stream
            return self._failed(raw, exc)

    def parse_lines(self, lines: Iterable[bytes | str],
                    received_at: float | None = None) -> Iterator[Event]:
        """Events of a file's lines, in order, keeping the file's context.

        The ``Time offset from UTC`` header turns the file-format times of the lines after it
        into UTC; the headers themselves are ``system`` events, so every line has its event.
        """
        now = time.time() if received_at is None else received_at
        file_clock: Clock | None = None
        plain = self._headers[None]
        for raw in lines:
            # The file context is parser state only while this line is parsed, so parse_line
            # calls between two lines of this generator never see it.
            self._file_clock = file_clock
            if file_clock is not None:
                self._header_cache = self._headers.setdefault(file_clock, {})
            try:
                event = self.parse_line(raw, now)  # guarded: never raises
            finally:
                self._file_clock = None
                self._header_cache = plain
            if event.kind == ev.SYSTEM:
                offset = event.data.get("utc_offset")
                if isinstance(offset, int) and -86400 < offset < 86400:
                    file_clock = self._clock(("offset", offset), offset_zone(offset))
                elif event.body.startswith("Begin Logfile"):
                    file_clock = None  # a new file starts: its own header follows
            yield event

    # -- internals -------------------------------------------------------------------------

    def _clock(self, key: object, tz: Any) -> Clock:
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = Clock(tz)
        return clock

    def _host_entry(self, host: str) -> tuple[str, Clock]:
        entry = self._hosts.get(host)
        if entry is None:
            if len(self._hosts) > 10_000:  # garbage hosts must not grow memory without bound
                self._hosts.clear()
            interned = sys.intern(host)
            tz = self._host_tz.get(host, self._default_tz)
            entry = self._hosts[interned] = (interned, self._clock(tz, tz))
        return entry

    def _set_context(self, received_at: float) -> None:
        self._ctx_day = received_at // 86400.0
        if self.year is None:
            moment = time.gmtime(received_at)
            ctx = (moment.tm_year, moment.tm_mon)
            if ctx != self._ctx:
                self._ctx = ctx
                for cache in self._headers.values():
                    cache.clear()
                self._last = ("", None, None)

    def _other_level(self, text: str) -> tuple[int, Framing | None]:
        """End of the header and its framing for a line that is not ``Info`` (slower path)."""
        mark = _LEVEL_MARK.search(text)
        if mark is None:
            return -1, None
        header = text[:mark.end()]
        return mark.end(), self._header_cache.get(header) or self._header(header)

    def _header(self, header: str) -> Framing | None:
        """Time, host, tag and level of a hot-path header, cached; None if it is not one."""
        match = _SYSLOG_HEADER.fullmatch(header)
        if match is not None:
            stamp, host_text, tag, level = match.groups()
            host, clock = self._default_entry if host_text is None else \
                self._host_entry(host_text)
            if clock.ctx is not self._ctx:
                clock.set_context(self._ctx)
            value: Framing = (clock.syslog(stamp), host, self._tags.get(tag) or
                              self._tags.setdefault(tag, sys.intern(tag)), sys.intern(level))
        else:
            match = _FILE_HEADER.fullmatch(header)
            if match is None:
                return None
            stamp, level = match.groups()
            clock = self._file_clock or self._default_entry[1]
            value = (clock.file(stamp), self.default_host, None, sys.intern(level))
        cache = self._header_cache
        if len(cache) >= _HEADER_CACHE_LIMIT:
            cache.clear()
        cache[header] = value
        return value

    def _decode(self, raw: bytes | str) -> tuple[str, bytes | None, bool]:
        truncated = False
        if isinstance(raw, str):
            text = raw
            if len(text) > self.max_line_bytes // 4 and \
                    len(text.encode("utf-8", "surrogatepass")) > self.max_line_bytes:
                cut = text.encode("utf-8", "surrogatepass")[: self.max_line_bytes]
                text = cut.decode("utf-8", "ignore")
                truncated = True
            return text.rstrip(), None, truncated
        data = bytes(raw)
        if len(data) > self.max_line_bytes:
            # Cut before a character that would be split: back up over continuation bytes.
            end = self.max_line_bytes
            limit = end - 3
            while end > limit and (data[end] & 0xC0) == 0x80:
                end -= 1
            data = data[:end]
            truncated = True
        try:
            return data.decode("utf-8").rstrip(), None, truncated
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace").rstrip(), data, truncated

    def _parse_general(self, text: str, keep: bytes | None, truncated: bool) -> Event:
        frame = self._frame(text, 0)
        host_text = frame.host
        host, clock = self._default_entry if host_text is None else self._host_entry(host_text)
        if clock.ctx is not self._ctx:
            clock.set_context(self._ctx)
        ts = self._stamp_ts(frame.stamp, clock, self._file_clock)
        tag = frame.tag
        if tag is not None:
            tag = self._tags.get(tag) or self._tags.setdefault(tag, sys.intern(tag))
        body = frame.body
        kind, icid, mid, dcid, data = parse_body(body)
        if kind == ev.UNKNOWN and data.get("reason") == "unrecognised body":
            data["reason"] = unknown_reason(body, frame.framed)
        elif kind == ev.CEF and ts is None:
            ts = _cef_time(data["ext"], clock)
        return Event(kind, ts, host, body, tag, frame.level, icid, mid, dcid, data, keep,
                     truncated)

    def _stamp_ts(self, stamp: _Stamp | None, clock: Clock,
                  file_clock: Clock | None) -> float | None:
        if stamp is None:
            return None
        if stamp.form == "epoch":
            return stamp.epoch
        if stamp.form == "file":
            use = file_clock if file_clock is not None else clock
            return use.syslog_parts(stamp.mon, stamp.day, stamp.hms, stamp.year)
        if stamp.form == "syslog":
            return clock.syslog_parts(stamp.mon, stamp.day, stamp.hms, stamp.year)
        try:
            moment = datetime.fromisoformat(stamp.iso.replace(" ", "T", 1))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=clock.tz)
        return moment.timestamp()

    def _time(self, text: str, pos: int) -> tuple[_Stamp | None, int]:
        """A time at ``pos`` in any of the known forms, and where the rest starts."""
        first = text[pos:pos + 1]
        if first.isalpha():
            match = _T_FILE.match(text, pos)
            if match is not None and match.group(1) in MONTHS:
                mon, day, hms, year = match.groups()
                return _Stamp("file", mon, day, hms, year), match.end()
            match = _T_3164.match(text, pos)
            if match is not None and match.group(1) in MONTHS:
                mon, day, hms, year = match.groups()
                return _Stamp("syslog", mon, day, hms, year), match.end()
        elif first.isdecimal():
            match = _T_ISO.match(text, pos)
            if match is not None:
                return _Stamp("iso", iso=match.group(1)), match.end()
            match = _T_GMT.match(text, pos)
            if match is not None and match.group(2) in MONTHS:
                day, mon, year, hh, mm, ss, sign, oh, om = match.groups()
                offset = (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
                epoch = local_epoch(UTC, (int(year), MONTHS[mon], int(day), int(hh),
                                          int(mm), int(ss)))
                return _Stamp("epoch", epoch=None if epoch is None else epoch - offset), \
                    match.end()
        return None, pos

    def _frame(self, text: str, depth: int) -> _Frame:
        """The general framing path: every known header shape, stacked relays unwrapped."""
        pos = 0
        match = _OCTET_COUNT.match(text)
        if match is not None:
            pos = match.end()
        pri = False
        if text.startswith("<", pos):
            match = _PRI.match(text, pos)
            if match is not None:
                pos = match.end()
                pri = True
                if text.startswith("1 ", pos):
                    match = _RFC5424.match(text, pos)
                    if match is not None:
                        return self._frame_5424(match)
        stamp, pos = self._time(text, pos)
        rest = text[pos:]
        host, tag, level, body, inner = self._after_time(rest)
        if inner is not None and depth < _MAX_STACK:
            frame = self._frame(inner, depth + 1)
            return frame._replace(
                stamp=frame.stamp or stamp, host=frame.host or host,
                tag=frame.tag or tag, framed=True)
        framed = stamp is not None or pri or level is not None or tag is not None
        return _Frame(stamp, host, tag, level, body if framed else text, framed)

    def _frame_5424(self, match: re.Match[str]) -> _Frame:
        stamp_text, host, app, _procid, _msgid, _sd, message = match.groups()
        stamp = None if stamp_text == "-" else _Stamp("iso", iso=stamp_text)
        message = (message or "").lstrip("\ufeff")
        level, body = _level(message)
        if level is None:
            # "tag: Level: body" inside MSG when the relay kept the appliance's tag
            _host, tag, level, body, _inner = self._after_time(message)
            if tag is not None and app == "-":
                app = tag
        return _Frame(stamp, None if host == "-" else host, None if app == "-" else app,
                      level, body, True)

    def _after_time(self, rest: str) -> tuple[str | None, str | None, str | None, str,
                                              str | None]:
        """``[host] [tag:] [Level:] body`` -> (host, tag, level, body, stacked inner line)."""
        rest = rest.lstrip(" ")
        if rest[:1] == "<" and _PRI.match(rest) is not None:
            return None, None, None, "", rest
        level, body = _level(rest)
        if level is not None:
            return None, None, level, body, None
        space = rest.find(" ")
        if space < 0:
            if _tag_like(rest):
                return None, _clean_tag(rest[:-1]), None, "", None
            return None, None, None, rest, None
        first = rest[:space]
        after = rest[space + 1:].lstrip(" ")
        if _tag_like(first):
            level, body = _level(after)
            return None, _clean_tag(first[:-1]), level, body, None
        if after[:1] == "<" and _PRI.match(after) is not None:
            return first, None, None, "", after
        space = after.find(" ")
        second = after if space < 0 else after[:space]
        if second[:-1] in LEVELS and "<" not in first and ":" not in first:
            level, body = _level(after)  # "host Level: body" (no tag)
            if level is not None:
                return first, None, level, body, None
        if _tag_like(second) and "<" not in first and ":" not in first:
            level, body = _level("" if space < 0 else after[space + 1:].lstrip(" "))
            return first, _clean_tag(second[:-1]), level, body, None
        return None, None, None, rest, None

    def _failed(self, raw: bytes | str, exc: Exception) -> Event:
        """The event of a line the parser itself failed on (a bug, but never a crash)."""
        if isinstance(raw, str):
            text, keep = raw, None
        else:
            data = bytes(raw)
            text, keep = data.decode("utf-8", "replace"), data
        cut = len(text) > self.max_line_bytes
        return Event(ev.UNKNOWN, None, self.default_host, text[: self.max_line_bytes],
                     data={"reason": f"parser error: {type(exc).__name__}: {exc}"},
                     raw=keep, truncated=cut)
