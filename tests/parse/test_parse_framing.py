"""Framings: where host, tag, level, time and body are, for every header shape we accept."""

from __future__ import annotations

import calendar

import pytest

from streams import events as ev
from streams.parse import Parser

RECEIVED = 1710700000.0  # 2024-03-17T18:26:40Z
T_2024_03_17 = calendar.timegm((2024, 3, 17, 18, 24, 37, 0, 0, 0))
BODY = "MID 6 queued for delivery"

# (line, host, tag, level, ts, kind)
CASES: list[tuple[str, str, str | None, str | None, float | None, str]] = [
    # RFC 3164 without and with a host
    (f"<166>Mar 17 18:24:37 mail_logs: Info: {BODY}", "esa", "mail_logs", "Info",
     T_2024_03_17, ev.MSG_QUEUED),
    (f"<94>Mar 17 18:24:37 esa1.example.net mail_logs: Info: {BODY}", "esa1.example.net",
     "mail_logs", "Info", T_2024_03_17, ev.MSG_QUEUED),
    (f"<94>Mar 17 18:24:37 esa1 mail_logs: Warning: {BODY}", "esa1", "mail_logs", "Warning",
     T_2024_03_17, ev.MSG_QUEUED),
    (f"<94>Mar 17 18:24:37 esa1 mail_logs: Critical: {BODY}", "esa1", "mail_logs", "Critical",
     T_2024_03_17, ev.MSG_QUEUED),
    (f"<94>Mar 17 18:24:37 esa1 mail_logs: Debug: {BODY}", "esa1", "mail_logs", "Debug",
     T_2024_03_17, ev.MSG_QUEUED),
    # single-digit day padded with a space, and unpadded
    (f"<38>Mar  7 18:24:37 esa1 mail_logs: Info: {BODY}", "esa1", "mail_logs", "Info",
     T_2024_03_17 - 10 * 86400, ev.MSG_QUEUED),
    (f"<38>Mar 7 18:24:37 esa1 mail_logs: Info: {BODY}", "esa1", "mail_logs", "Info",
     T_2024_03_17 - 10 * 86400, ev.MSG_QUEUED),
    # a host but no tag
    (f"<38>Mar 17 18:24:37 esa1 Info: {BODY}", "esa1", None, "Info", T_2024_03_17,
     ev.MSG_QUEUED),
    # tag with a pid, no PRI, double space before the host (a collector's own format)
    (f"<38>Mar 17 18:24:37 esa1 mail_logs[123]: Info: {BODY}", "esa1", "mail_logs", "Info",
     T_2024_03_17, ev.MSG_QUEUED),
    (f"Mar 17 18:24:37  10.0.1.1 MAIL_SecurityAudit: Info: {BODY}", "10.0.1.1",
     "MAIL_SecurityAudit", "Info", T_2024_03_17, ev.MSG_QUEUED),
    (f"Mar 17 18:24:37 SplunkMailSyslog: Info: {BODY}", "esa", "SplunkMailSyslog", "Info",
     T_2024_03_17, ev.MSG_QUEUED),
    # a year after the time (relays), with the year overriding the inference
    (f"Mar 17 18:24:37 2013 esa9 mail_logs: Info: {BODY}", "esa9", "mail_logs", "Info",
     calendar.timegm((2013, 3, 17, 18, 24, 37, 0, 0, 0)), ev.MSG_QUEUED),
    (f"<13>Mar 17 18:24:37 2013 esa9 mail_logs: Info: {BODY}", "esa9", "mail_logs", "Info",
     calendar.timegm((2013, 3, 17, 18, 24, 37, 0, 0, 0)), ev.MSG_QUEUED),
    # stacked relay headers: the inner (appliance) header wins, the outer fills gaps
    (f"<13>Mar 17 18:25:00 relay1 <166>Mar 17 18:24:37 esa1 mail_logs: Info: {BODY}", "esa1",
     "mail_logs", "Info", T_2024_03_17, ev.MSG_QUEUED),
    (f"<13>Mar 17 18:25:00 esa2 <166>Mar 17 18:24:37 mail_logs: Info: {BODY}", "esa2",
     "mail_logs", "Info", T_2024_03_17, ev.MSG_QUEUED),
    # octet-counted TCP framing left on the line
    (f"78 <166>Mar 17 18:24:37 esa1 mail_logs: Info: {BODY}", "esa1", "mail_logs", "Info",
     T_2024_03_17, ev.MSG_QUEUED),
    # RFC 5424 with zone offset and fractions, and with structured data
    (f"<166>1 2024-03-17T18:24:37.123+07:00 esa1 mail_logs - - - Info: {BODY}", "esa1",
     "mail_logs", "Info", T_2024_03_17 - 7 * 3600 + 0.123, ev.MSG_QUEUED),
    (f'<166>1 2024-03-17T18:24:37Z esa1 mail_logs - - [origin ip="10.0.0.1"] Info: {BODY}',
     "esa1", "mail_logs", "Info", T_2024_03_17, ev.MSG_QUEUED),
    (f"<166>1 - - - - - - Info: {BODY}", "esa", None, "Info", None, ev.MSG_QUEUED),
    # RFC 3339 time without PRI (rsyslog's precise template)
    (f"2024-03-17T18:24:37+00:00 esa1 mail_logs: Info: {BODY}", "esa1", "mail_logs", "Info",
     T_2024_03_17, ev.MSG_QUEUED),
    # the appliance's file format, and the collector's file-format time with host and tag
    (f"Sun Mar 17 18:24:37 2024 Info: {BODY}", "esa", None, "Info", T_2024_03_17,
     ev.MSG_QUEUED),
    (f"Tue Aug 3 16:36:29 2004 Info: {BODY}", "esa", None, "Info",
     calendar.timegm((2004, 8, 3, 16, 36, 29, 0, 0, 0)), ev.MSG_QUEUED),
    (f"Tue Jun  1 20:02:16 2004 Info: {BODY}", "esa", None, "Info",
     calendar.timegm((2004, 6, 1, 20, 2, 16, 0, 0, 0)), ev.MSG_QUEUED),
    (f"Mon Aug 10 09:12:39 2020 7.37.118.246 testmaillog: Info: {BODY}", "7.37.118.246",
     "testmaillog", "Info", calendar.timegm((2020, 8, 10, 9, 12, 39, 0, 0, 0)), ev.MSG_QUEUED),
    # the web proxy's stamp with its own GMT offset
    ("04 May 2020 12:59:57 (GMT-1:00) Info: Begin Logfile", "esa", None, "Info",
     calendar.timegm((2020, 5, 4, 13, 59, 57, 0, 0, 0)), ev.SYSTEM),
    # bare level and body, bare body, CEF without a header
    (f"Info: {BODY}", "esa", None, "Info", None, ev.MSG_QUEUED),
    (BODY, "esa", None, None, None, ev.MSG_QUEUED),
    ("<166>Mar 17 18:24:37 consolidated_event: CEF:0|Cisco|C100V|14.0|ESA_CONSOLIDATED_LOG_EVENT"
     "|Consolidated Log Event|5|ESAMID=1 msg=hi", "esa", "consolidated_event", None,
     T_2024_03_17, ev.CEF),
    # leading spaces after the level
    ("<166>Mar 17 18:24:37 amp: Info:   Retrospective verdict received. SHA256: ab", "esa",
     "amp", "Info", T_2024_03_17, ev.SYSTEM),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0][:50] for case in CASES])
def test_framing_fields(case: tuple[str, str, str | None, str | None, float | None, str]
                        ) -> None:
    """Each framing yields the appliance, subscription, level, UTC time and the body's kind."""
    line, host, tag, level, ts, kind = case
    event = Parser(default_host="esa").parse_line(line, RECEIVED)
    assert (event.host, event.tag, event.level, event.kind) == (host, tag, level, kind)
    if ts is None:
        assert event.ts is None
    else:
        assert event.ts == pytest.approx(ts, abs=1e-3)


def test_body_excludes_the_framing() -> None:
    """The event body is the text after the level, trailing whitespace and CR removed."""
    event = Parser().parse_line(f"<166>Mar 17 18:24:37 esa1 mail_logs: Info: {BODY}  \r\n",
                                RECEIVED)
    assert event.body == BODY


def test_same_header_twice_is_the_same_framing() -> None:
    """A header served from the cache frames exactly as the first time it was seen."""
    parser = Parser()
    line = f"<94>Mar 17 18:24:37 esa1.example.net mail_logs: Info: {BODY}"
    first = parser.parse_line(line, RECEIVED)
    second = parser.parse_line(line, RECEIVED)
    assert (first.ts, first.host, first.tag, first.level) == \
        (second.ts, second.host, second.tag, second.level)


def test_body_with_info_marker_does_not_fool_the_header_cache() -> None:
    """A body containing ' Info: ' under another level still frames by the real level."""
    parser = Parser()
    event = parser.parse_line(
        "<94>Mar 17 18:24:37 esa1 mail_logs: Warning: MID 6 Subject 'FYI Info: x'", RECEIVED)
    assert (event.level, event.kind, event.data) == \
        ("Warning", ev.MSG_SUBJECT, {"subject": "FYI Info: x"})


@pytest.mark.parametrize(("line", "reason"), [
    ("1340875127.391 108 172.17.21.78 TCP_MISS_SSL/200 2545 GET https://www.example.dk/x - "
     "DIRECT/my.site.tk text/xml DEFAULT_CASE_11-DSBaccess-NONE <IW_busi,0.0> -",
     "wsa access log (web proxy, not ESA mail)"),
    ("184 10.0.0.6 TCP_CLIENT_REFRESH_MISS/404 461 POST http://test_web.net/u.jpg - "
     "DEFAULT_PARENT/www.x.com application/javascript DEFAULT_CASE_184 <IW_infr,9.2> -",
     "wsa access log (web proxy, not ESA mail)"),
    ("Mon May 04 12:59:59 2020 Info: Firewall noted TCP data from 10.0.0.15 to 61.79.37.205.",
     "wsa l4tm log (web proxy, not ESA mail)"),
    ("", "empty line"),
    ("   \r", "empty line"),
    ("random words without framing", "no ESA framing (no time, level or known body)"),
    ("<166>Mar 17 18:24:37 esa1 mail_logs: Info: Something new", "unrecognised body"),
])
def test_unknown_lines_say_why(line: str, reason: str) -> None:
    """Lines that are not ESA mail events are unknown with a reason naming what they are."""
    event = Parser().parse_line(line, RECEIVED)
    assert (event.kind, event.data["reason"]) == (ev.UNKNOWN, reason)


def test_unknown_keeps_the_framing_it_could_read() -> None:
    """An unknown body under a good header still carries host, tag, level and time."""
    event = Parser().parse_line("<166>Mar 17 18:24:37 esa1 mail_logs: Info: Something new",
                                RECEIVED)
    assert (event.kind, event.host, event.tag, event.level, event.ts) == \
        (ev.UNKNOWN, "esa1", "mail_logs", "Info", T_2024_03_17)


def test_invalid_utf8_is_replaced_and_raw_kept() -> None:
    """Bytes that are not UTF-8 decode with replacement, and the raw bytes stay on the event."""
    raw = b"<166>Mar 17 18:24:37 esa1 mail_logs: Info: MID 6 Subject '\xe9t\xe9'"
    event = Parser().parse_line(raw, RECEIVED)
    assert (event.kind, event.data["subject"], event.raw) == \
        (ev.MSG_SUBJECT, "\ufffdt\ufffd", raw)


def test_valid_utf8_keeps_no_raw_copy() -> None:
    """A line that decodes cleanly does not carry its bytes twice."""
    event = Parser().parse_line("<166>Mar 17 18:24:37 esa1 mail_logs: Info: MID 6 Subject "
                                "'ยืนยัน'".encode(), RECEIVED)
    assert (event.data["subject"], event.raw) == ("ยืนยัน", None)


@pytest.mark.parametrize("raw", [
    b"<166>Mar 17 18:24:37 esa1 mail_logs: Info: MID 6 Subject '" + b"x" * 500 + b"'",
    b"<166>Mar 17 18:24:37 esa1 mail_logs: Info: MID 6 Subject '" + "ก".encode() * 300 + b"'",
    "<166>Mar 17 18:24:37 esa1 mail_logs: Info: MID 6 Subject '" + "ก" * 300 + "'",
])
def test_overlong_lines_are_cut_and_flagged(raw: bytes | str) -> None:
    """A line over max_line_bytes is cut to the cap (whole characters) and flagged, not lost."""
    event = Parser(max_line_bytes=256).parse_line(raw, RECEIVED)
    assert event.truncated
    assert event.kind == ev.MSG_SUBJECT
    assert event.raw is None  # cut on a character boundary: nothing undecodable
    assert len(("<166>Mar 17 18:24:37 esa1 mail_logs: Info: " + event.body).encode()) <= 256


def test_lines_under_the_cap_are_not_flagged() -> None:
    """Lines within max_line_bytes are whole and not flagged."""
    event = Parser(max_line_bytes=256).parse_line(f"Info: {BODY}")
    assert not event.truncated
    assert event.body == BODY


def test_hosts_and_tags_are_interned() -> None:
    """Hosts and tags of different lines are the same string objects (less memory)."""
    parser = Parser()
    one = parser.parse_line(f"<94>Mar 17 18:24:37 esa1.example.net mail_logs: Info: {BODY}",
                            RECEIVED)
    two = parser.parse_line(f"<94>Mar 17 18:24:38 esa1.example.net mail_logs: Info: {BODY}",
                            RECEIVED)
    assert one.host is two.host
    assert one.tag is two.tag
