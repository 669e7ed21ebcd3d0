"""The receiver's header reader: which appliance a syslog line names (the Kafka key)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.ingest.header import appliance, appliance_slow

CASES = [
    # RFC 3164 with host
    (b"<22>Nov 19 09:16:38 esa1.example.com mail_logs: Info: MID 6 ICID 5", b"esa1.example.com"),
    # single-digit day padded with a space
    (b"<22>Nov  9 09:16:38 esa2 mail_logs: Info: New SMTP ICID 5", b"esa2"),
    # host missing: the tag follows the time
    (b"<22>Nov 19 09:16:38 mail_logs: Info: MID 6 ICID 5", None),
    # tag with pid, no host
    (b"<13>Nov 19 09:16:38 sshd[123]: hello", None),
    # a relay's year after the time
    (b"<22>Nov 19 09:16:38 2014 esa3 mail_logs: Info: x", b"esa3"),
    # no PRI (a syslog capture file)
    (b"Nov 19 09:16:38 esa4 mail_logs: Info: MID 1", b"esa4"),
    # RFC 5424
    (b"<165>1 2024-05-01T10:00:00.003Z esa5.example.com mail_logs - - - Info: MID 1",
     b"esa5.example.com"),
    # RFC 5424 nil host
    (b"<165>1 2024-05-01T10:00:00Z - mail_logs - - - Info: MID 1", None),
    # RFC 3339 time in a 3164-style header (rsyslog forwarding format)
    (b"<22>2024-05-01T10:00:00+07:00 esa6 mail_logs: Info: MID 1", b"esa6"),
    # relay re-wrap with a PRI: the inner (appliance) host wins
    (b"<13>Nov 19 09:16:40 relay1 <22>Nov 19 09:16:38 esa7 mail_logs: Info: x", b"esa7"),
    # relay re-wrap without inner PRI
    (b"<13>Nov 19 09:16:40 relay1 Nov 19 09:16:38 esa8 mail_logs: Info: x", b"esa8"),
    # relay re-wrap whose inner header names no host: the relay is all we know
    (b"<13>Nov 19 09:16:40 relay1 <22>Nov 19 09:16:38 mail_logs: Info: x", b"relay1"),
    # appliance file line: no syslog header at all
    (b"Wed Nov 19 09:16:38 2014 Info: MID 6 ICID 5", None),
    (b"Begin Logfile", None),
    (b"", None),
    (b"<22>", None),
    (b"<999999>Nov 19 09:16:38 esa1 tag: x", None),
    (b"<22>Foo 19 09:16:38 esa1 tag: x", None),
    # IPv4 address as host
    (b"<22>Nov 19 09:16:38 192.0.2.7 mail_logs: Info: x", b"192.0.2.7"),
    # a host with bytes no host name has
    (b"<22>Nov 19 09:16:38 es\xffa mail_logs: Info: x", None),
    # only a time and one token: nothing after the host candidate
    (b"<22>Nov 19 09:16:38 esa1", None),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_appliance_from_header(line: bytes, expected: bytes | None) -> None:
    """Each header shape yields its appliance, or None when the line names none."""
    assert appliance(line) == expected


def test_long_body_is_not_read() -> None:
    """Only the head of a line is looked at: a huge body does not change the answer."""
    line = b"<22>Nov 19 09:16:38 esa1 mail_logs: Info: " + b"x" * 1_000_000
    assert appliance(line) == b"esa1"


@given(st.binary(max_size=600))
def test_never_crashes(line: bytes) -> None:
    """No input makes the header reader raise; it returns bytes or None."""
    result = appliance(line)
    assert result is None or isinstance(result, bytes)


@given(st.binary(max_size=300))
def test_relay_prefix_never_crashes(tail: bytes) -> None:
    """Relay-looking prefixes followed by anything never make the reader raise."""
    result = appliance(b"<13>Nov 19 09:16:40 relay1 <22>" + tail)
    assert result is None or isinstance(result, bytes)


_PRI = st.sampled_from([b"<22>", b"<1>", b"<191>", b"", b"<x>"])
_MONTH = st.sampled_from([b"Nov", b"Jan", b"Foo", b"nov"])
_DAY = st.sampled_from([b"19", b" 9", b"9", b"x9"])
_TIME = st.sampled_from([b"09:16:38", b"09:16:38.123", b"9:16:38"])
_YEAR = st.sampled_from([b"", b" 2014"])
_HOST = st.sampled_from([b"esa1", b"esa1.example.com", b"192.0.2.7", b"fe80::1", b"mail_logs:",
                         b"sshd[1]:", b"-", b"2014", b"h\xff", b"a" * 300, b"Nov", b"<13>Nov"])
_TAG = st.sampled_from([b"mail_logs:", b"amp[123]:", b"2024-05-01T10:00:00Z", b"<22>Nov",
                        b"Nov", b"9tag:", b"Info:", b"tag", b"_t:"])
_REST = st.binary(max_size=40)


@given(st.tuples(_PRI, _MONTH, _DAY, _TIME, _YEAR, _HOST, _TAG, _REST))
def test_fast_path_agrees_with_general_reader(parts: tuple[bytes, ...]) -> None:
    """The regex fast path and the general reader name the same appliance for any header."""
    pri, month, day, clock, year, host, tag, rest = parts
    line = pri + month + b" " + day + b" " + clock + year + b" " + host + b" " + tag + b" " + rest
    assert appliance(line) == appliance_slow(line)
