"""Consolidated Event Log (CEF) lines: header fields and every extension, unescaped values too."""

from __future__ import annotations

import calendar

import pytest

from streams import events as ev
from streams.parse import Parser
from streams.parse.cef import parse_extension

HEADER = ("CEF:0|Cisco|C100V Email Security Virtual Appliance|14.0.0-657|"
          "ESA_CONSOLIDATED_LOG_EVENT|Consolidated Log Event|5|")


@pytest.mark.parametrize(("extension", "expected"), [
    ("ESAMID=1053 ESAICID=134 act=QUARANTINED", {"ESAMID": "1053", "ESAICID": "134",
                                                 "act": "QUARANTINED"}),
    # values with spaces, and two spaces between pairs
    ("msg='RE: SR 312312 : consolidate event log'  ESACFVerdict=MATCH",
     {"msg": "'RE: SR 312312 : consolidate event log'", "ESACFVerdict": "MATCH"}),
    ("endTime=Thu Nov  3 14:05:44 2022 ESASDRDomainAge=27 years 2 months 15 days",
     {"endTime": "Thu Nov  3 14:05:44 2022", "ESASDRDomainAge": "27 years 2 months 15 days"}),
    # friendly names with angle brackets and quotes
    ('ESAFriendlyFrom="Castle. B (Bouncy Castle)" <bouncy@castle.com> suser=bouncy@castle.com',
     {"ESAFriendlyFrom": '"Castle. B (Bouncy Castle)" <bouncy@castle.com>',
      "suser": "bouncy@castle.com"}),
    # Python-literal dicts, including '=' inside them
    ("ESAMARAction={'action':'<>';'succesful_rcpts'='<>'} ESAMsgTooBigFromSender=true",
     {"ESAMARAction": "{'action':'<>';'succesful_rcpts'='<>'}",
      "ESAMsgTooBigFromSender": "true"}),
    ("ESASPFVerdict={'mailfrom': {'result': 'Pass', 'sender': 'a@b.c'}} sourceAddress=1.2.3.4",
     {"ESASPFVerdict": "{'mailfrom': {'result': 'Pass', 'sender': 'a@b.c'}}",
      "sourceAddress": "1.2.3.4"}),
    # a key with spaces that the appliance emits
    ("ESAMARAction= {action:failure} Message Filters Verdict=NO MATCH ESADCID=857",
     {"ESAMARAction": "{action:failure}", "Message Filters Verdict": "NO MATCH",
      "ESADCID": "857"}),
    # '=' inside a value that is not a key boundary, and CEF escapes
    (r"suser=westinghouse-thoreau\=example.com@example.com msg=a b=c",
     {"suser": "westinghouse-thoreau=example.com@example.com", "msg": "a b=c"}),
    (r"cs4='<CAKE\\=jq@mail.gmail.com>' cs6Label={{ host }} cs6=Weak",
     {"cs4": "'<CAKE\\=jq@mail.gmail.com>'", "cs6Label": "{{ host }}", "cs6": "Weak"}),
    # text before the first key is kept, not lost
    ("garbage ESAMID=5", {"": "garbage", "ESAMID": "5"}),
])
def test_extension_pairs(extension: str, expected: dict[str, str]) -> None:
    """Values are cut only at ' key=' for known CEF/ESA keys, so unescaped values stay whole."""
    assert parse_extension(extension) == expected


def test_cef_event_header_ids_and_ext() -> None:
    """A syslog-framed CEF line gives kind cef, the header fields, ids and all extensions."""
    line = ("<166>Mar 17 18:24:37 consolidated_event: " + HEADER +
            "deviceExternalId=42127C7DDEE76852677B-F80CE8074CD3 ESAMID=153634 ESAICID=55854 "
            "ESADCID=41512 act=DELIVERED cfp1Label=SBRSScore cfp1=not enabled "
            "msg='[SUSPICIOUS MESSAGE] Everycloud Mailflow Monitor guid: 12312314123'")
    event = Parser().parse_line(line, 1710700000.0)
    assert (event.kind, event.tag, event.icid, event.mid, event.dcid) == \
        (ev.CEF, "consolidated_event", 55854, 153634, 41512)
    assert {key: event.data[key] for key in ("vendor", "product", "version", "signature",
                                             "name", "severity")} == {
        "vendor": "Cisco", "product": "C100V Email Security Virtual Appliance",
        "version": "14.0.0-657", "signature": "ESA_CONSOLIDATED_LOG_EVENT",
        "name": "Consolidated Log Event", "severity": "5"}
    assert event.data["ext"]["cfp1"] == "not enabled"
    assert event.data["ext"]["msg"] == \
        "'[SUSPICIOUS MESSAGE] Everycloud Mailflow Monitor guid: 12312314123'"


def test_unframed_cef_is_dated_by_its_end_time() -> None:
    """A CEF line without a syslog header takes its time from endTime in the appliance zone."""
    event = Parser(timezone="Asia/Bangkok").parse_line(
        HEADER + "ESAMID=81 endTime=Mon Aug 10 09:26:47 2020 msg=x")
    assert event.kind == ev.CEF
    assert event.ts == calendar.timegm((2020, 8, 10, 2, 26, 47, 0, 0, 0))


def test_escaped_pipe_in_header() -> None:
    """An escaped pipe inside a header field does not split it."""
    event = Parser().parse_line(r"CEF:0|Cisco|ESA \| virtual|1|SIG|Name|5|ESAMID=1")
    assert (event.kind, event.data["product"], event.mid) == (ev.CEF, "ESA | virtual", 1)


def test_short_cef_header_is_unknown() -> None:
    """A CEF line with too few header fields is unknown, with a reason."""
    event = Parser().parse_line("CEF:0|Cisco|ESA")
    assert (event.kind, event.data["reason"]) == \
        (ev.UNKNOWN, "CEF line with fewer than 7 header fields")
