"""Find the appliance name in a syslog line: a small, fast reader of RFC 3164 / 5424 headers.

This is not the parser (``streams.parse`` reads the whole line). The receiver only needs the
Kafka key, so it looks at the first few hundred bytes and nothing else. Shapes read:

- RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP ...`` (``-`` as hostname means none);
- RFC 3164: ``<PRI>Mmm dd hh:mm:ss [yyyy] [HOST] TAG: ...``; the host is missing when the
  token after the time is the tag (it ends with ``:`` or carries ``[pid]``);
- relays' RFC 3339 time in a 3164 header: ``<PRI>2024-05-01T10:00:00+07:00 HOST TAG: ...``;
- the PRI is optional (syslog capture files carry none);
- a relay's re-wrap, a second header in front of the first: the inner (appliance's) host wins.

Anything else (an appliance log file line ``Wed Nov 19 09:16:38 2014 Info: ...``, garbage)
yields ``None`` and the caller falls back (peer address, ``--host``, ``default_host``).
"""

from __future__ import annotations

import re

_MONTHS = frozenset(
    m.encode() for m in ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
)
_HOST_RE = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:%-]{0,254}")
# The common shape, ``<PRI>Mmm dd hh:mm:ss HOST TAG:`` (or ``TAG[pid]``), in one regex: the
# fast path. Anything it does not match goes to the general reader below, which agrees with it
# on every line it does match (a property test checks this).
appliance_fast = re.compile(
    rb"<\d{1,3}>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d "
    rb"(?!\d{4} )([A-Za-z0-9](?:[A-Za-z0-9._:%-]{0,253}[A-Za-z0-9._%-])?) [A-Za-z_][^\s:\[<]*[:\[]"
).match
_HEAD_BYTES = 512  # a header never needs more than this; the body is never looked at
_MAX_DEPTH = 3  # relays re-wrapping relays; bounded so no input can recurse far


def _is_time(token: bytes) -> bool:
    """``hh:mm:ss`` with optional fraction."""
    return len(token) >= 8 and token[2:3] == b":" and token[5:6] == b":" and token[:2].isdigit()


def _is_rfc3339(token: bytes) -> bool:
    return len(token) >= 19 and token[4:5] == b"-" and token[10:11] == b"T" and token[:4].isdigit()


def _host(token: bytes) -> bytes | None:
    """The token as a host name, or None when it is a tag, a nil value or not a name."""
    if token.endswith(b":") or b"[" in token or token == b"-":
        return None
    return token if _HOST_RE.fullmatch(token) else None


def _tokens(head: bytes) -> list[bytes]:
    return head.split(None, 8)


def _read(head: bytes, depth: int) -> bytes | None:
    if head[:1] == b"<":
        end = head.find(b">", 1, 6)
        if end < 0 or not head[1:end].isdigit():
            return None
        head = head[end + 1:]
    tokens = _tokens(head)
    if len(tokens) < 2:
        return None
    first = tokens[0]
    if first.isdigit() and len(first) <= 2:  # RFC 5424 VERSION
        return _host(tokens[2]) if len(tokens) > 3 else None
    if _is_rfc3339(first):
        index = 1
    elif first in _MONTHS and len(tokens) > 3 and tokens[1].isdigit() and _is_time(tokens[2]):
        index = 3
        if tokens[index].isdigit() and len(tokens[index]) == 4:  # a relay's year after the time
            index += 1
    else:
        return None
    if index + 1 >= len(tokens):  # a host needs something (the tag) after it
        return None
    host = _host(tokens[index])
    if host is None:
        return None
    if depth < _MAX_DEPTH:
        after = tokens[index + 1]
        if after[:1] == b"<" or after in _MONTHS or _is_rfc3339(after):
            # A relay's header in front of the appliance's: look for the inner host.
            offset = head.find(after, head.find(host) + len(host))
            inner = _read(head[offset:], depth + 1)
            if inner is not None:
                return inner
    return host


def appliance(line: bytes) -> bytes | None:
    """The appliance (syslog host) named by the line's header, or None if it names none."""
    found = appliance_fast(line)
    if found is not None:
        return found.group(1)
    return _read(line[:_HEAD_BYTES], 0)


def appliance_slow(line: bytes) -> bytes | None:
    """:func:`appliance` without the fast path: the general reader, for lines
    :data:`appliance_fast` (the regex's ``match``; the host is group 1) does not match."""
    return _read(line[:_HEAD_BYTES], 0)
