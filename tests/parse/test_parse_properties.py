"""Property tests: no input can make the parser raise, and every line has exactly one event."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import events as ev
from streams.events import Event
from streams.parse import Parser

PARSER = Parser(max_line_bytes=512)

# Fragments of real framings and bodies, so generated lines reach deep into the handlers.
FRAGMENTS = [
    "<166>", "<94>", "Mar 17 18:24:37 ", "Dec 31 23:59:59 ", "Wed Nov 19 09:16:38 2014 ",
    "esa1 ", "mail_logs: ", "Info: ", "Warning: ", "MID ", "ICID ", "DCID ", "RID ", "6 ",
    "[0, 1] ",
    "Start ", "New SMTP ", "From: ", "To: ", "<a@b> ", "Subject ", "'", '"', "Message done ",
    "Bounced: ", "Delayed: ", "12:0 ", "Reason: ", "Response ", "CEF:0|", "|", "=", "ESAMID=",
    "msg=", "was split creating MID ", "generated based on MID ", "rewritten to ", "Status: ",
    "CPULd ", "1 ", "2024-03-17T18:24:37Z ", "- ", "[x=\"y\"] ", "Time offset from UTC: ",
    "seconds", "Version: ", "SN: ", "Connection Error: DCID ", "port: ", "SMTP Auth: (ICID ",
    ") succeeded for user: ", "quarantined to ", "pending till ", "\\r\\n", "\t", "\u0e01",
    "\ufffd", "\x00", "(", ")", "{", "}",
]
structured = st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)


def _valid(event: Event) -> None:
    assert isinstance(event, Event)
    assert event.kind in ev.KIND_FIELDS
    assert event.ts is None or isinstance(event.ts, float)
    assert isinstance(event.body, str)
    if event.kind == ev.UNKNOWN:
        reason = event.data.get("reason")
        assert isinstance(reason, str)
        assert not reason.startswith("parser error"), reason  # the guard caught a bug


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=600))
def test_any_text_gives_one_valid_event(text: str) -> None:
    """Arbitrary text never raises and always gives one well-formed event."""
    _valid(PARSER.parse_line(text))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_one_valid_event(raw: bytes) -> None:
    """Arbitrary bytes never raise; undecodable bytes are kept on the event."""
    event = PARSER.parse_line(raw)
    _valid(event)
    if event.raw is not None:
        assert raw.startswith(event.raw)


@settings(max_examples=600, deadline=None)
@given(structured)
def test_structured_noise_gives_one_valid_event(text: str) -> None:
    """Lines assembled from real fragments in any order never raise."""
    _valid(PARSER.parse_line(text))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(structured, st.text(max_size=80)), max_size=40))
def test_every_line_of_a_file_is_accounted_for(lines: list[str]) -> None:
    """parse_lines yields exactly one event per input line, in order."""
    events = list(Parser().parse_lines(lines))
    assert len(events) == len(lines)
    for event in events:
        _valid(event)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=2000))
def test_truncation_flag_matches_the_cap(text: str) -> None:
    """truncated is set exactly when the encoded line exceeds max_line_bytes."""
    event = PARSER.parse_line(text)
    assert event.truncated == (len(text.encode("utf-8", "surrogatepass")) > 512)


@pytest.mark.parametrize("line", [
    "<22>Mar 17 00:00:01 esa3 mail_logs: Info: MID 107994 RID [0, \x1f1, 2] Response 'ok'",
    "Info: MID " + "9" * 5000 + " queued for delivery",
    "Info: ICID " + "9" * 5000 + " close",
    "Info: Start MID 1 ICID " + "9" * 5000,
    "Info: Message finished MID " + "9" * 5000 + " done",
    "Info: Delivery start DCID 1 MID " + "9" * 5000 + " to RID [0]",
    "Info: Status: CPULd " + "9" * 5000,
    "Info: MID ² queued for delivery",
    "Info: Time offset from UTC: " + "9" * 5000 + " seconds",
    "CEF:0|a|b|c|d|e|5|ESAMID=" + "9" * 5000,
])
def test_found_by_fuzzing_no_parser_error(line: str) -> None:
    """Inputs that once reached the last-resort guard now parse without a parser error."""
    _valid(Parser().parse_line(line))
