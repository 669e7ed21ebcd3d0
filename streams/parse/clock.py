"""Turning the appliance's local wall-clock stamps into UTC epoch seconds, with caches.

Syslog (RFC 3164) stamps carry neither year nor zone: the zone comes from configuration (per
appliance, else the default) and the year is inferred from when the line was received. A line is
never far in the future of its receipt, so a month more than one ahead of the receipt month
belongs to the previous year (Dec 31 received on Jan 1), and a January line received in December
(an appliance clock or zone ahead of the receiver) to the next one.

Conversions are cached per clock (one clock per zone or fixed offset) by the stamp text, so a busy
stream pays one dict lookup per line; the cache is cleared when the receipt month (the context of
the year inference) changes or when it grows large.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

MONTHS = {name: index for index, name in enumerate(calendar.month_abbr) if name}
"""``{"Jan": 1, ... "Dec": 12}``."""

_CACHE_LIMIT = 200_000


def zone(name: str) -> tzinfo:
    """The tzinfo of an IANA name (``UTC`` is the fast fixed zone)."""
    if name in ("UTC", "Etc/UTC", "GMT", "Z"):
        return UTC
    return ZoneInfo(name)


def offset_zone(seconds: int) -> tzinfo:
    """A fixed zone ``seconds`` east of UTC (the file header's ``Time offset from UTC``)."""
    return timezone(timedelta(seconds=seconds))


def infer_year(month: int, ref_year: int, ref_month: int) -> int:
    """The year of a year-less stamp in ``month``, received in ``ref_year``/``ref_month``.

    ``ref_month`` 0 means the year is pinned: ``ref_year`` is the answer.
    """
    if ref_month == 0:
        return ref_year
    diff = month - ref_month
    if diff > 1:
        return ref_year - 1
    if diff < -10:
        return ref_year + 1
    return ref_year


def local_epoch(tz: tzinfo, fields: tuple[int, int, int, int, int, int]) -> float | None:
    """Epoch seconds of a local wall-clock time (year, month, day, hour, minute, second) in
    ``tz``; ``None`` if it is no valid date."""
    try:
        year, month, day, hour, minute, second = fields
        if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
                and hour < 24 and minute < 60 and second < 61):
            return None
        if tz is UTC:
            return float(calendar.timegm((year, month, day, hour, minute, min(second, 59),
                                          0, 0, 0)))
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=tz).timestamp()
    except (ValueError, OverflowError):
        return None


class Clock:
    """One zone's conversions: syslog stamps (year inferred) and file stamps (year given)."""

    __slots__ = ("ctx", "file_cache", "syslog_cache", "tz")

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.ctx: tuple[int, int] = (0, 0)
        self.syslog_cache: dict[str, float] = {}
        self.file_cache: dict[str, float] = {}

    def set_context(self, ctx: tuple[int, int]) -> None:
        """Switch the year-inference context (receipt year, month); drops syslog conversions."""
        self.ctx = ctx
        self.syslog_cache.clear()

    def syslog(self, stamp: str) -> float | None:
        """``Mar 17 18:24:37`` (``Mar  7 ...``) in the current context; cached."""
        cached = self.syslog_cache.get(stamp)
        if cached is not None:
            return cached
        parts = stamp.split()
        if len(parts) != 3:
            return None
        value = self.syslog_parts(parts[0], parts[1], parts[2], None)
        if value is not None:
            if len(self.syslog_cache) >= _CACHE_LIMIT:
                self.syslog_cache.clear()
            self.syslog_cache[stamp] = value
        return value

    def syslog_parts(self, mon: str, day: str, hms: str, year: str | None) -> float | None:
        """A syslog stamp from its parts; ``year`` when the relay added one."""
        month = MONTHS.get(mon)
        if month is None or not day.isdecimal() or len(hms) < 8:
            return None
        try:
            hour, minute, second = int(hms[0:2]), int(hms[3:5]), int(hms[6:8])
        except ValueError:
            return None
        if year is not None:
            full_year = int(year)
        else:
            ref_year, ref_month = self.ctx
            full_year = infer_year(month, ref_year, ref_month)
        return local_epoch(self.tz, (full_year, month, int(day), hour, minute, second))

    def file(self, stamp: str) -> float | None:
        """``Nov 19 09:16:38 2014`` (file format, weekday removed); cached."""
        cached = self.file_cache.get(stamp)
        if cached is not None:
            return cached
        parts = stamp.split()
        if len(parts) != 4 or not parts[3].isdecimal():
            return None
        value = self.syslog_parts(parts[0], parts[1], parts[2], parts[3])
        if value is not None:
            if len(self.file_cache) >= _CACHE_LIMIT:
                self.file_cache.clear()
            self.file_cache[stamp] = value
        return value
