"""Time normalisation: every event time is UTC epoch seconds, whatever the framing said."""

from __future__ import annotations

import calendar

import pytest

from streams.parse import Parser
from streams.parse.clock import infer_year


def utc(*fields: int) -> float:
    return float(calendar.timegm((*fields, 0, 0, 0)))


LINE = "<22>{stamp} esa1 mail_logs: Info: MID 6 queued for delivery"


@pytest.mark.parametrize(("month", "ref_year", "ref_month", "year"), [
    (3, 2024, 3, 2024),    # same month
    (4, 2024, 3, 2024),    # a month ahead (zone ahead of the receiver at a month's end)
    (12, 2025, 1, 2024),   # Dec line received in January: last year
    (11, 2025, 1, 2024),
    (1, 2024, 12, 2025),   # Jan line received in December: appliance clock ahead
    (6, 2024, 12, 2024),   # old line replayed later the same year
    (5, 2024, 0, 2024),    # month 0: the year is pinned
])
def test_year_inference(month: int, ref_year: int, ref_month: int, year: int) -> None:
    """A year-less stamp's year is the receipt year, except across the New Year boundary."""
    assert infer_year(month, ref_year, ref_month) == year


def test_new_year_rollover_dec31_received_jan1() -> None:
    """A Dec 31 23:59:59 line received on Jan 1 belongs to the previous year."""
    event = Parser().parse_line(LINE.format(stamp="Dec 31 23:59:59"), utc(2025, 1, 1, 0, 0, 5))
    assert event.ts == utc(2024, 12, 31, 23, 59, 59)


def test_new_year_rollover_jan1_received_dec31() -> None:
    """A Jan 1 line received on Dec 31 (appliance clock ahead) belongs to the next year."""
    event = Parser().parse_line(LINE.format(stamp="Jan  1 00:00:03"), utc(2024, 12, 31, 23, 59))
    assert event.ts == utc(2025, 1, 1, 0, 0, 3)


def test_the_same_header_follows_the_receipt_year() -> None:
    """A cached header is re-dated when the receipt moves to another year."""
    parser = Parser()
    line = LINE.format(stamp="Mar 17 18:24:37")
    first = parser.parse_line(line, utc(2024, 3, 17, 18, 25))
    later = parser.parse_line(line, utc(2025, 3, 17, 18, 25))
    assert (first.ts, later.ts) == (utc(2024, 3, 17, 18, 24, 37), utc(2025, 3, 17, 18, 24, 37))


def test_pinned_year_ignores_the_receipt_time() -> None:
    """With year= the syslog year is fixed, whatever the receipt time."""
    event = Parser(year=2019).parse_line(LINE.format(stamp="Dec 31 23:59:59"),
                                         utc(2025, 1, 1))
    assert event.ts == utc(2019, 12, 31, 23, 59, 59)


def test_default_zone_converts_syslog_time() -> None:
    """Syslog times are read in the configured zone (Asia/Bangkok is UTC+7)."""
    event = Parser(timezone="Asia/Bangkok").parse_line(LINE.format(stamp="Mar 17 18:24:37"),
                                                       utc(2024, 3, 17, 12))
    assert event.ts == utc(2024, 3, 17, 11, 24, 37)


def test_per_host_zone_overrides_the_default() -> None:
    """An appliance's own zone beats the default; others keep the default."""
    parser = Parser(timezone="UTC", host_timezones={"esa1": "America/New_York"})
    ny = parser.parse_line(LINE.format(stamp="Jul  4 12:00:00"), utc(2024, 7, 4, 18))
    other = parser.parse_line(LINE.format(stamp="Jul  4 12:00:00").replace("esa1", "esa2"),
                              utc(2024, 7, 4, 18))
    assert (ny.ts, other.ts) == (utc(2024, 7, 4, 16), utc(2024, 7, 4, 12))


def test_daylight_saving_is_applied_per_date() -> None:
    """The same wall-clock time maps to different UTC offsets in winter and summer."""
    parser = Parser(timezone="Europe/Berlin", year=2024)
    winter = parser.parse_line(LINE.format(stamp="Jan 15 12:00:00"))
    summer = parser.parse_line(LINE.format(stamp="Jul 15 12:00:00"))
    assert (winter.ts, summer.ts) == (utc(2024, 1, 15, 11), utc(2024, 7, 15, 10))


def test_file_offset_header_turns_local_file_times_into_utc() -> None:
    """After 'Time offset from UTC: -21600 seconds' file times are local time six hours behind."""
    lines = [
        b"Wed Nov 19 09:16:30 2014 Info: Begin Logfile",
        b"Wed Nov 19 09:16:31 2014 Info: Version: 7.6.3-019 SN: 420D8A1B2C3D-ABCDEF1",
        b"Wed Nov 19 09:16:32 2014 Info: Time offset from UTC: -21600 seconds",
        b"Wed Nov 19 09:16:38 2014 Info: MID 6 queued for delivery",
    ]
    events = list(Parser(timezone="Asia/Bangkok").parse_lines(lines))
    assert events[3].ts == utc(2014, 11, 19, 15, 16, 38)
    # the header lines before the offset was known use the configured zone
    assert events[0].ts == utc(2014, 11, 19, 2, 16, 30)
    assert [e.kind for e in events[:3]] == ["system"] * 3
    assert events[2].data["utc_offset"] == -21600


def test_offset_applies_per_file_and_resets_at_begin_logfile() -> None:
    """A new 'Begin Logfile' drops the previous file's offset until its own header."""
    lines = [
        "Wed Nov 19 09:16:32 2014 Info: Time offset from UTC: 3600 seconds",
        "Wed Nov 19 09:16:38 2014 Info: MID 6 queued for delivery",
        "Wed Nov 19 10:00:00 2014 Info: Begin Logfile",
        "Wed Nov 19 10:00:01 2014 Info: MID 7 queued for delivery",
    ]
    events = list(Parser().parse_lines(lines))
    assert (events[1].ts, events[3].ts) == (utc(2014, 11, 19, 8, 16, 38),
                                            utc(2014, 11, 19, 10, 0, 1))


def test_parse_line_alone_has_no_file_context() -> None:
    """parse_line is stateless: an offset header seen by it changes no later line."""
    parser = Parser()
    parser.parse_line("Wed Nov 19 09:16:32 2014 Info: Time offset from UTC: 3600 seconds")
    event = parser.parse_line("Wed Nov 19 09:16:38 2014 Info: MID 6 queued for delivery")
    assert event.ts == utc(2014, 11, 19, 9, 16, 38)


def test_invalid_date_gives_no_time_but_still_an_event() -> None:
    """Feb 30 is no date: the event has ts None and the body is still parsed."""
    event = Parser(year=2024).parse_line(LINE.format(stamp="Feb 30 10:00:00"))
    assert (event.ts, event.kind, event.mid) == (None, "msg_queued", 6)


def test_rfc5424_offset_is_respected_over_configuration() -> None:
    """An explicit offset in the stamp wins over the configured zone."""
    event = Parser(timezone="Asia/Bangkok").parse_line(
        "<166>1 2024-03-17T18:24:37-05:00 esa1 mail_logs - - - Info: MID 6 queued for delivery")
    assert event.ts == utc(2024, 3, 17, 23, 24, 37)


def test_from_settings_uses_host_zone_and_default_host() -> None:
    """Parser.from_settings takes the default host and the zones from the settings object."""
    from streams.settings import load_settings  # noqa: PLC0415 - only this test needs it

    settings = load_settings(default_host="esa-file", timezone="Asia/Bangkok",
                             host_timezones={"esa1": "UTC"})
    parser = Parser.from_settings(settings, year=2024)
    file_line = parser.parse_line("Sun Mar 17 18:24:37 2024 Info: MID 6 queued for delivery")
    esa1 = parser.parse_line(LINE.format(stamp="Mar 17 18:24:37"))
    assert (file_line.host, file_line.ts) == ("esa-file", utc(2024, 3, 17, 11, 24, 37))
    assert (esa1.host, esa1.ts) == ("esa1", utc(2024, 3, 17, 18, 24, 37))
