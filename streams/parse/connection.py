"""Connection lines: ``New SMTP ICID/DCID``, ``ICID <n> ...`` (HAT policy, TLS, close) and
``SMTP Auth``.

HAT policy and TLS texts repeat across connections and are memoised; :func:`tls` is shared with
the delivery side (``DCID <n> TLS ...``), and ``ICID <n> RID <r> To:`` reuses the message
module's recipient parser.
"""

from __future__ import annotations

import re
from typing import Any, Final

from streams.events import (
    CONN_AUTH,
    CONN_CLOSE,
    CONN_INFO,
    CONN_NEW,
    CONN_POLICY,
    CONN_TLS,
    DLV_NEW,
)
from streams.parse.fields import MEMO_LIMIT, Result, float_or_none, unknown
from streams.parse.message import RCPT, rcpt

_CONN_NEW = re.compile(
    r"SMTP ICID (\d{1,18}) interface (.*?) \(([^)]*)\) address (\S+)"
    r"(?: reverse dns host (\S*) verified (\w+))?"
)
_DLV_NEW = re.compile(r"SMTP DCID (\d{1,18}) interface (\S+) address (\S+)(?: port (\d{1,18}))?")
_HAT = re.compile(r"SG (\S+) match (.*?) SBRS (.*?)(?: country (.*))?$")
_HAT_NO_SBRS = re.compile(r"SG (\S+) match (.*)$")
_TLS_OK = re.compile(r"success(?: protocol (\S+))?(?: cipher (\S+))?(?: for (\S+))?")
_POLICY_ACTIONS: Final = frozenset({"ACCEPT", "RELAY", "REJECT", "TCPREFUSE", "CONTINUE"})


def new_line(body: str) -> Result:
    match = _CONN_NEW.match(body, 4)
    if match is not None:
        icid, interface, interface_ip, ip, rdns, verified = match.groups()
        data: dict[str, Any] = {"interface": interface, "interface_ip": interface_ip, "ip": ip}
        if rdns is not None:
            data["rdns"] = rdns
            data["rdns_verified"] = verified == "yes"
        return (CONN_NEW, int(icid), None, None, data)
    match = _DLV_NEW.match(body, 4)
    if match is not None:
        dcid, interface, ip, port = match.groups()
        data = {"interface": interface, "ip": ip}
        if port is not None:
            data["port"] = int(port)
        return (DLV_NEW, None, None, int(dcid), data)
    return unknown("New line: neither SMTP ICID nor SMTP DCID")


def tls(rest: str) -> dict[str, Any] | None:
    hit = _conn_memo.get(rest)
    if hit is not None:
        return hit.copy()
    data = _tls_parse(rest)
    if data is not None:
        _remember(rest, data)
    return data


def _tls_parse(rest: str) -> dict[str, Any] | None:
    if rest.startswith("success"):
        match = _TLS_OK.match(rest)
        if match is None:  # pragma: no cover - the pattern matches any "success" prefix
            return None
        protocol, cipher, domain = match.groups()
        data: dict[str, Any] = {"success": True, "protocol": protocol, "cipher": cipher}
        if domain is not None:
            data["domain"] = domain
        return data
    if rest.startswith("failed"):
        return {"success": False, "error": rest[6:].lstrip(": ") or None}
    return None


# TLS and HAT policy texts repeat across connections: memoised like verdict lines.
_conn_memo: dict[str, dict[str, Any]] = {}


def _remember(key: str, data: dict[str, Any]) -> None:
    if len(_conn_memo) >= MEMO_LIMIT:
        _conn_memo.clear()
    _conn_memo[key] = data.copy()


def icid_line(body: str) -> Result:
    parts = body.split(" ", 3)
    if len(parts) < 3 or len(parts[1]) > 18 or not parts[1].isdecimal():  # is_number, inline
        return unknown("ICID line: no ICID number")
    icid = int(parts[1])
    word = parts[2]
    rest = parts[3] if len(parts) > 3 else ""
    if word in _POLICY_ACTIONS:
        key = word + " " + rest
        hit = _conn_memo.get(key)
        if hit is not None:
            return (CONN_POLICY, icid, None, None, hit.copy())
        result = _policy(icid, word, rest)
        _remember(key, result[4])
        return result
    if word == "close":
        return (CONN_CLOSE, icid, None, None, {"lost": False})
    if word == "TLS":
        data = tls(rest)
        if data is not None:
            return (CONN_TLS, icid, None, None, data)
    return _icid_other(body, icid, word, rest)


def _policy(icid: int, word: str, rest: str) -> Result:
    match = _HAT.match(rest)
    if match is not None:
        group, matched, sbrs, country = match.groups()
        return (CONN_POLICY, icid, None, None, {
            "action": word, "sender_group": group, "match": matched,
            "sbrs": float_or_none(sbrs), "country": country, "delayed": False})
    match = _HAT_NO_SBRS.match(rest)
    if match is not None:
        return (CONN_POLICY, icid, None, None, {
            "action": word, "sender_group": match.group(1), "match": match.group(2),
            "sbrs": None, "country": None, "delayed": False})
    return (CONN_POLICY, icid, None, None, {"action": word, "delayed": False})


def _icid_other(body: str, icid: int, word: str, rest: str) -> Result:
    if word == "lost":
        return (CONN_CLOSE, icid, None, None, {"lost": True})
    if word == "Delayed" and rest.startswith("HAT "):
        # "Delayed HAT REJECT continuing session for recipient logging (223.71.167.166)"
        action = rest[4:].split(" ", 1)[0]
        return (CONN_POLICY, icid, None, None, {
            "action": action, "delayed": True, "detail": rest})
    if word == "RID":
        match = RCPT.match(body, body.find("RID"))
        if match is not None:
            return rcpt(icid, None, match)
    text = body.split(" ", 2)
    return (CONN_INFO, icid, None, None, {"text": text[2] if len(text) > 2 else ""})


_AUTH = re.compile(r"Auth: \(ICID (\d{1,18})\) (succeeded|failed) for user: (.*?)"
                   r"(?: using AUTH mechanism: (\S+))?(?: with profile: (.*))?$")
_AUTH_ICID = re.compile(r"Auth: \(ICID (\d{1,18})\) ?(.*)$")


def smtp_auth_line(body: str) -> Result:
    match = _AUTH.match(body, 5)
    if match is not None:
        icid, outcome, user, mechanism, profile = match.groups()
        return (CONN_AUTH, int(icid), None, None, {
            "success": outcome == "succeeded", "user": user, "mechanism": mechanism,
            "profile": profile})
    match = _AUTH_ICID.match(body, 5)
    if match is not None:
        return (CONN_INFO, int(match.group(1)), None, None, {"text": body})
    return unknown("SMTP line: not an SMTP Auth line")
