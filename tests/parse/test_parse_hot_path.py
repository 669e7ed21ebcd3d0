"""The parser's hot path (``Parser.parse_line`` written out inline) against the slow, plain way.

``parse_line`` builds events without the dataclass ``__init__`` and reuses the previous line's
header; both are speed-ups that must not change a single field. These tests compare it with a
fresh parser per line (no header memo) and with events built through ``__init__``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import events as ev
from streams.events import Event
from streams.parse import Parser

RECEIVED = 1710700000.0  # 2024-03-17T18:26:40Z

HEADERS = [
    "<22>Mar 17 18:24:37 esa1 mail_logs: Info: ",
    "<22>Mar 17 18:24:37 esa2 mail_logs: Info: ",
    "<22>Mar 17 18:24:38 esa1 mail_logs: Info: ",
    "<22>Mar 17 18:24:37 esa1 mail_logs: Warning: ",
    "<22>Mar 17 18:24:37 esa1 mail_logs: Info: Info: ",
    "Sun Mar 17 18:24:37 2024 Info: ",
    "",
]
BODIES = [
    "MID 6 queued for delivery",
    "Start MID 6 ICID 5",
    "MID 6 ICID 5 From: <a@example.org>",
    "MID 6 ICID 5 RID 0 To: <b@example.org>",
    "New SMTP ICID 5 interface Main (10.0.0.1) address 192.0.2.1 reverse dns host "
    "mx.example.org verified yes",
    "Delivery start DCID 9 MID 6 to RID [0]",
    "MID 6 ICID x From: <a@example.org>",
    "something the parser does not know",
]


def as_dict(event: Event) -> dict[str, Any]:
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(Event)}


def test_every_field_of_event_is_set_like_init_does() -> None:
    line = HEADERS[0] + "MID 6 ICID 5 RID 0 To: <b@example.org>"
    event = Parser().parse_line(line, RECEIVED)
    built = Event(**as_dict(event))  # through __init__: fails if a slot was left unset
    assert built == event
    assert event.kind == ev.MSG_RCPT and event.mid == 6 and event.icid == 5
    assert event.host == "esa1" and event.tag == "mail_logs" and event.level == "Info"
    assert event.raw is None and event.truncated is False


def test_repeated_header_reuses_framing_but_not_across_hosts_or_seconds() -> None:
    parser = Parser()
    first = parser.parse_line(HEADERS[0] + BODIES[0], RECEIVED)
    again = parser.parse_line(HEADERS[0] + BODIES[1], RECEIVED)
    other_host = parser.parse_line(HEADERS[1] + BODIES[1], RECEIVED)
    next_second = parser.parse_line(HEADERS[2] + BODIES[1], RECEIVED)
    assert (first.host, again.host, other_host.host) == ("esa1", "esa1", "esa2")
    assert first.ts is not None and again.ts == first.ts
    assert next_second.ts == first.ts + 1
    assert again.body == BODIES[1] and again.kind == ev.MSG_START


def test_receipt_month_change_drops_the_remembered_header() -> None:
    parser = Parser()
    line = "<22>Dec 31 23:59:59 esa1 mail_logs: Info: " + BODIES[0]
    december = parser.parse_line(line, 1735689000.0)  # received 2024-12-31T23:50Z
    january = parser.parse_line(line, 1735689600.0 + 3600)  # received 2025-01-01T01:00Z
    assert december.ts is not None and january.ts == december.ts  # late line: still 2024
    july = parser.parse_line(line, 1751328000.0)  # received 2025-07-01: the year is 2024
    assert july.ts == december.ts
    march = parser.parse_line("<22>Mar 17 18:24:37 esa1 mail_logs: Info: " + BODIES[0],
                              1742236000.0)  # received 2025-03-17
    assert march.ts == 1742235877.0  # 2025-03-17T18:24:37Z, not a 2024 date from a memo


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(HEADERS), st.sampled_from(BODIES)), min_size=1,
                max_size=30))
def test_one_parser_over_a_stream_equals_a_fresh_parser_per_line(
        lines: list[tuple[str, str]]) -> None:
    shared = Parser()
    for header, body in lines:
        line = header + body
        assert as_dict(shared.parse_line(line, RECEIVED)) == \
            as_dict(Parser().parse_line(line, RECEIVED)), line
