"""Line bodies (the text after the framing) -> event kind, identifiers and data: the dispatch.

Dispatch is on the first word of the body (``MID``, ``ICID``, ``New``, ``Message`` ...) through
:data:`FIRST_WORD`, built once at import from the handlers in the modules named for the lines they
read: :mod:`~streams.parse.connection`, :mod:`~streams.parse.message` (MID lines dispatch again
on the word after the number), :mod:`~streams.parse.delivery` and
:mod:`~streams.parse.appliance`. So the hot path costs a ``str.find``, one or two dict lookups
and at most one or two regex matches, never a list of patterns tried in order. Every handler
returns a :data:`~streams.parse.fields.Result`; none raises on bad input (the parser still guards
the call, as a last resort).
"""

from __future__ import annotations

import re
from typing import Final

from streams.parse.appliance import (
    amp_log_line,
    antivirus_log_line,
    status_line,
    system_or_unknown,
    time_offset_line,
    version_line,
)
from streams.parse.cef import parse_cef
from streams.parse.connection import icid_line, new_line, smtp_auth_line
from streams.parse.delivery import (
    bounced_or_delayed_line,
    connection_error_line,
    dcid_line,
    delivery_start_line,
    message_line,
)
from streams.parse.fields import Handler, Result
from streams.parse.message import isq_line, mid_line, rpc_line, start_line

FIRST_WORD: Final[dict[str, Handler]] = {
    "Time": time_offset_line,
    "Version:": version_line,
    "MID": mid_line,
    "ICID": icid_line,
    "DCID": dcid_line,
    "New": new_line,
    "Start": start_line,
    "Message": message_line,
    "Delivery": delivery_start_line,
    "Bounced:": bounced_or_delayed_line,
    "Delayed:": bounced_or_delayed_line,
    "SMTP": smtp_auth_line,
    "ISQ:": isq_line,
    "RPC": rpc_line,
    "Status:": status_line,
    "Connection": connection_error_line,
    "sophos": antivirus_log_line,
    "mcafee": antivirus_log_line,
    "File": amp_log_line,
    "Response": amp_log_line,
}

_WSA_ACCESS = re.compile(
    r"[A-Z_]+/\d{3} \d+ [A-Z_]+ |"
    r" (?:GET|POST|HEAD|PUT|DELETE|CONNECT|OPTIONS|PATCH) (?:https?|tunnel|ftp)://"
)


def parse_body(body: str) -> Result:
    """Classify one body; never raises on ordinary input."""
    space = body.find(" ")
    handler = FIRST_WORD.get(body[:space] if space > 0 else body)
    if handler is not None:
        return handler(body)
    if body.startswith("CEF:"):
        return parse_cef(body)
    return system_or_unknown(body)


def unknown_reason(text: str, framed: bool) -> str:
    """Why a line whose body matched nothing is unknown: foreign text, or which part failed."""
    if not text:
        return "empty line"
    if _WSA_ACCESS.search(text) is not None:
        return "wsa access log (web proxy, not ESA mail)"
    if framed:
        return "unrecognised body"
    return "no ESA framing (no time, level or known body)"
