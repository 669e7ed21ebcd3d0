"""Delivery lines: ``DCID <n> ...``, ``Delivery start``, ``Message ...``, ``Bounced:`` /
``Delayed:`` (delivery failures and the bounce log's records) and ``Connection Error``.

The ``Message`` first word carries delivery lines (``done``, ``<mid> to RID [..] pending till``)
and the message's end (``finished``, ``aborted``); one handler takes them all so that the
first-word dispatch stays one lookup.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from streams.events import (
    BOUNCE_LOG,
    DLV_BOUNCED,
    DLV_CLOSE,
    DLV_DELAYED,
    DLV_DONE,
    DLV_ERROR,
    DLV_INFO,
    DLV_PENDING,
    DLV_START,
    DLV_TLS,
    MSG_ABORTED,
    MSG_FINISHED,
)
from streams.parse.appliance import system_or_unknown
from streams.parse.connection import tls
from streams.parse.fields import Result, is_number, rid_list, unknown

_FINISHED = re.compile(r"finished MID (\d{1,18})(?: (.*))?$")
_ABORTED = re.compile(r"aborted MID (\d{1,18})(?: (.*))?$")
_DONE = re.compile(r"done DCID (\d{1,18}) MID (\d{1,18}) to RID \[([\d, ]*)\]\s*(.*)$")
_PENDING = re.compile(r"(\d{1,18}) to RID \[([\d, ]*)\] pending till (.*)$")
_DLV_START = re.compile(r"start DCID (\d{1,18}) MID (\d{1,18}) to RID \[([\d, ]*)\](.*)$")
_DLV_FAIL = re.compile(r"(?:DCID (\d{1,18}) )?MID (\d{1,18})(?: From: ?<([^>]*)>)?"
                       r"(?: To: ?<([^>]*)>)?(?: to)? RID \[?([\d, ]*)\]?(.*)$")
_BOUNCE_LOG = re.compile(r"(\d{1,18}):(\d{1,18})(?: From: ?<([^>]*)>)?(?: To: ?<([^>]*)>)?(.*)$")
_BL_REASON = re.compile(r'Reason: ?"((?:[^"\\]|\\.)*)"')
_BL_RESPONSE = re.compile(r'Response: ?"(.*?)"(?= Headers:| Message:|$)')


def _headers(text: str) -> list[list[str]] | None:
    """The header list that header logging appends: ``[('from', 'a@x'), ...]``."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    pairs: list[list[str]] = []
    for item in value:
        if isinstance(item, tuple) and len(item) == 2:
            pairs.append([str(item[0]), str(item[1])])
    return pairs


def message_line(body: str) -> Result:
    word_end = body.find(" ", 8)
    word = body[8:word_end] if word_end > 0 else body[8:]
    rest = body[8:]
    if word == "done":
        match = _DONE.match(rest)
        if match is None:
            return unknown("Message done: unrecognised shape")
        dcid, mid, rids, tail = match.groups()
        data: dict[str, Any] = {"rids": rid_list(rids), "external_quarantine": False}
        if tail:
            if tail.endswith("(external quarantine)"):
                data["external_quarantine"] = True
                tail = tail[:-21].rstrip()
            if tail.startswith("["):
                headers = _headers(tail)
                if headers is not None:
                    data["headers"] = headers
        return (DLV_DONE, None, int(mid), int(dcid), data)
    if word == "finished":
        match = _FINISHED.match(rest)
        if match is None:
            return unknown("Message finished: no MID")
        return (MSG_FINISHED, None, int(match.group(1)), None, {"outcome": match.group(2)})
    if word == "aborted":
        match = _ABORTED.match(rest)
        if match is None:
            return unknown("Message aborted: no MID")
        return (MSG_ABORTED, None, int(match.group(1)), None, {"reason": match.group(2)})
    if word.isdecimal():
        match = _PENDING.match(rest)
        if match is not None:
            mid, rids, until = match.groups()
            return (DLV_PENDING, None, int(mid), None,
                    {"rids": rid_list(rids), "until": until})
    return system_or_unknown(body)


def delivery_start_line(body: str) -> Result:
    match = _DLV_START.match(body, 9)
    if match is None:
        return system_or_unknown(body)
    dcid, mid, rids, _tail = match.groups()
    return (DLV_START, None, int(mid), int(dcid), {"rids": rid_list(rids)})


def _split_failure(tail: str) -> dict[str, Any]:
    """`` - 5.1.0 - Unknown address error ('550', ['...']) []`` -> code, reason, response."""
    data: dict[str, Any] = {}
    text = tail.strip()
    if text.startswith("- "):
        code, sep, after = text[2:].partition(" - ")
        if sep:
            data["code"] = code.strip()
            text = after
        else:
            text = text[2:]
    # Drop the trailing list (``[]`` or the logged headers) after the response tuple.
    if text.endswith("]"):
        close = text.rfind(")")
        if close > 0:
            text = text[: close + 1]
    start = text.find(" ('")
    if start < 0:
        start = text.find(' ("')
    if start >= 0:
        data["reason"] = text[:start].strip()
        data["response"] = text[start + 1:].strip()
    elif text.startswith("('"):
        data["response"] = text
    elif text:
        data["reason"] = text
    return data


def bounced_or_delayed_line(body: str) -> Result:
    delayed = body[0] == "D"
    rest = body[8:].lstrip()
    match = _DLV_FAIL.match(rest)
    if match is not None:
        dcid, mid, sender, recipient, rids, tail = match.groups()
        data = _split_failure(tail)
        data["rids"] = rid_list(rids)
        if sender is not None:
            data["sender"] = sender
        if recipient is not None:
            data["recipient"] = recipient
        kind = DLV_DELAYED if delayed else DLV_BOUNCED
        return (kind, None, int(mid), None if dcid is None else int(dcid), data)
    match = _BOUNCE_LOG.match(rest)
    if match is not None:
        mid, rid, sender, recipient, tail = match.groups()
        data = {"rid": int(rid), "sender": sender, "recipient": recipient, "delayed": delayed}
        reason = _BL_REASON.search(tail)
        if reason is not None:
            data["reason"] = reason.group(1)
        response = _BL_RESPONSE.search(tail)
        if response is not None:
            data["response"] = response.group(1)
        return (BOUNCE_LOG, None, int(mid), None, data)
    return unknown("Bounced/Delayed line: unrecognised shape")


def dcid_line(body: str) -> Result:
    parts = body.split(" ", 3)
    if len(parts) < 3 or len(parts[1]) > 18 or not parts[1].isdecimal():  # is_number, inline
        return unknown("DCID line: no DCID number")
    dcid = int(parts[1])
    word = parts[2]
    if word == "close":
        return (DLV_CLOSE, None, None, dcid, {})
    if word == "TLS":
        data = tls(parts[3] if len(parts) > 3 else "")
        if data is not None:
            return (DLV_TLS, None, None, dcid, data)
    text = body.split(" ", 2)
    return (DLV_INFO, None, None, dcid, {"text": text[2] if len(text) > 2 else ""})


_CONN_ERROR_FIELDS = re.compile(r"(?:^| )(domain|IP|port|details|interface|reason): ")


def connection_error_line(body: str) -> Result:
    # "Connection Error: DCID 63 domain: example.com IP: 192.0.2.5 port: 25 details: ..."
    if not body.startswith("Connection Error: DCID "):
        return system_or_unknown(body)
    rest = body[23:]
    number, _, tail = rest.partition(" ")
    if not is_number(number):
        return unknown("Connection Error line: no DCID number")
    data: dict[str, Any] = {"text": tail}
    marks = list(_CONN_ERROR_FIELDS.finditer(tail))
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(tail)
        key = mark.group(1).lower()
        value = tail[mark.end():end].strip()
        data[key] = int(value) if key == "port" and is_number(value) else value
    return (DLV_ERROR, None, None, int(number), data)
