"""Line bodies (the text after the framing) -> event kind, identifiers and data.

Dispatch is on the first word of the body (``MID``, ``ICID``, ``New``, ``Message`` ...) through a
dict of handlers; MID lines dispatch again on the word after the number. So the hot path costs a
``str.find``, one or two dict lookups and at most one or two regex matches, never a list of
patterns tried in order. Every handler returns a :data:`Result`; none raises on bad input (the
parser still guards the call, as a last resort).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any, Final

from streams.events import (
    BOUNCE_LOG,
    CONN_AUTH,
    CONN_CLOSE,
    CONN_INFO,
    CONN_NEW,
    CONN_POLICY,
    CONN_TLS,
    DLV_BOUNCED,
    DLV_CLOSE,
    DLV_DELAYED,
    DLV_DONE,
    DLV_ERROR,
    DLV_INFO,
    DLV_NEW,
    DLV_PENDING,
    DLV_RESPONSE,
    DLV_START,
    DLV_TLS,
    MSG_ABORTED,
    MSG_ATTACHMENT,
    MSG_CUSTOM,
    MSG_FINISHED,
    MSG_FROM,
    MSG_GENERATED,
    MSG_INFO,
    MSG_MESSAGE_ID,
    MSG_POLICY,
    MSG_QUARANTINE,
    MSG_QUEUED,
    MSG_RCPT,
    MSG_READY,
    MSG_RELEASE,
    MSG_REWRITE,
    MSG_SPLIT,
    MSG_START,
    MSG_SUBJECT,
    MSG_URL,
    MSG_VERDICT,
    STATUS,
    SYSTEM,
    UNKNOWN,
)
from streams.parse.cef import parse_cef

Result = tuple[str, int | None, int | None, int | None, dict[str, Any]]
"""(kind, icid, mid, dcid, data)."""

Handler = Callable[[str], Result]
MidHandler = Callable[[int, str, str], Result]


def unknown(reason: str) -> Result:
    """An ``unknown`` result with the reason."""
    return (UNKNOWN, None, None, None, {"reason": reason})


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _unquote(text: str) -> str:
    """``'x'`` or ``"x"`` -> ``x``; anything else unchanged (subjects come in all quotings)."""
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        return text[1:-1]
    return text


def _address(text: str) -> str:
    """``<a@b>`` (possibly followed by ESMTP parameters) -> ``a@b``; a bare address as is."""
    text = text.strip()
    if text[:1] == "<":
        end = text.find(">")
        return text[1:end] if end > 0 else text[1:]
    space = text.find(" ")
    return text if space < 0 else text[:space]


def _rid_list(text: str) -> list[int]:
    """``0, 1`` or ``[0, 1]`` -> ``[0, 1]``; non-numbers are skipped."""
    return [int(part) for part in (piece.strip() for piece in text.strip("[] ").split(","))
            if _is_number(part)]


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_number(text: str) -> bool:
    """Decimal digits that int() takes (Python refuses over 4300 digits; ids are far shorter)."""
    return len(text) <= 18 and text.isdecimal()


def _int_or_none(text: str) -> int | None:
    return int(text) if _is_number(text) else None


# ---------------------------------------------------------------------------------------------
# MID lines: ``MID <n> <word> <rest>``
# ---------------------------------------------------------------------------------------------

_RCPT = re.compile(r"RID (\d{1,18}) To: ?(<[^>]*>|\S*)(?: (.*))?$")
_POLICY = re.compile(
    r"(?:all recipients|recipients? \[?([\d, ]*)\]?) for (?:per-recipient )?policy (.+?)"
    r"(?: in the (\w+) table)?$"
)
_SPLIT = re.compile(r"split creating MID (\d{1,18})"
                    r"(?: due to (?:a )?(?:per-recipient )?policy (.+?)(?: in the (\w+) table)?)?$")
_GEN_BASED = re.compile(r"based on MID (\d{1,18})(?: by (.*))?$")
_GEN_BOUNCE = re.compile(r"for bounce of MID (\d{1,18})(.*)$")
_TOO_BIG = re.compile(r"too big \(([^)]*)\) for scanning by (.+?)\.?$")
_REWRITE = re.compile(r"to (?:MID )?(\d{1,18})(?: by (.*))?$")
_QUARANTINE = re.compile(r'(?:for transfer )?to (?:centralized quarantine |quarantine )?"([^"]*)"'
                         r"(?: \((.*)\))?")
_RELEASE = re.compile(r'from (?:the )?(?:quarantine|quarantines)(?: "([^"]*)")?(?: \((.*)\))?')
_DLP = re.compile(r"violation\. Severity: (\w+)(?: \(Risk Factor: (\d{1,18})\))?\.?"
                  r"(?: DLP policy match: '(.*)')?")
_SPF = re.compile(r"(\w+) identity (\S*) (\w+)(?: (.*))?$")
_DMARC_VERDICT = re.compile(r"DMARC (\w+)")
_SDR_LEVEL = re.compile(r"Threat Level: ([^,]+)")
_URL_REP = " has reputation "

_ENGINES: Final = {
    "CASE": "antispam",
    "GRAYMAIL": "graymail",
    "IMS": "antispam",
    "BRIGHTMAIL": "antispam",
    "SPF": "spf",
    "DKIM": "dkim",
    "DMARC": "dmarc",
    "SDR": "sdr",
}
_SCANNERS: Final = {
    "Outbreak Filters": "outbreak",
    "CASE": "antispam",
    "Sophos": "antivirus",
    "McAfee": "antivirus",
    "anti-virus": "antivirus",
    "AMP": "amp",
    "Graymail": "graymail",
}


def _verdict(engine: str, verdict: str, interim: bool = False, detail: str | None = None,
             mid: int | None = None) -> Result:
    data: dict[str, Any] = {"engine": engine, "verdict": verdict, "interim": interim}
    if detail:
        data["detail"] = detail
    return (MSG_VERDICT, None, mid, None, data)


def _info(mid: int, body: str) -> Result:
    """A MID line the timeline shows as text: the body after ``MID <n>``."""
    parts = body.split(" ", 2)
    return (MSG_INFO, None, mid, None, {"text": parts[2] if len(parts) > 2 else ""})


def _m_icid(mid: int, rest: str, body: str) -> Result:
    space = rest.find(" ")
    icid = _int_or_none(rest[:space]) if space > 0 else None
    if icid is None:
        return unknown("MID ICID line: no ICID number")
    tail = rest[space + 1:]
    if tail.startswith("From:"):
        return (MSG_FROM, icid, mid, None, {"sender": _address(tail[5:])})
    # "RID 0 To: <b@example.org>[ Rejected by RAT]": string operations, no regex
    parts = tail.split(" ", 3)
    if len(parts) == 4 and parts[0] == "RID" and parts[2] == "To:" and _is_number(parts[1]):
        address = parts[3]
        close = address.find(">") if address[:1] == "<" else -1
        if close > 0 and close == len(address) - 1:
            return (MSG_RCPT, icid, mid, None,
                    {"rid": int(parts[1]), "address": address[1:-1], "rejected": False})
    match = _RCPT.match(tail)
    if match is None:
        return unknown("MID ICID line: neither From: nor RID To:")
    return _rcpt(icid, mid, match)


def _rcpt(icid: int | None, mid: int | None, match: re.Match[str]) -> Result:
    rid, address, trailer = match.groups()
    data: dict[str, Any] = {"rid": int(rid), "address": _address(address),
                            "rejected": False}
    if trailer:
        trailer = trailer.strip()
        if trailer.startswith("Rejected"):
            data["rejected"] = True
            data["reason"] = trailer
        elif trailer:
            data["reason"] = trailer
    return (MSG_RCPT, icid, mid, None, data)


def _m_message_id(mid: int, rest: str, body: str) -> Result:
    return (MSG_MESSAGE_ID, None, mid, None, {"message_id": _unquote(rest)})


def _m_subject(mid: int, rest: str, body: str) -> Result:
    return (MSG_SUBJECT, None, mid, None, {"subject": _unquote(rest)})


def _m_ready(mid: int, rest: str, body: str) -> Result:
    size, _sep, sender = rest.partition(" bytes")
    if not _is_number(size):
        return unknown("MID ready line: no size")
    data: dict[str, Any] = {"size": int(size)}
    if sender.startswith(" from "):
        data["sender"] = _address(sender[6:])
    return (MSG_READY, None, mid, None, data)


def _m_matched(mid: int, rest: str, body: str) -> Result:
    match = _POLICY.match(rest)
    if match is None:
        return _info(mid, body)
    rids, policy, direction = match.groups()
    return (MSG_POLICY, None, mid, None, {
        "policy": policy, "direction": direction,
        "rids": None if rids is None else _rid_list(rids)})


def _engine_verdict(mid: int, rest: str, interim: bool, body: str) -> Result:
    # rest: "engine: CASE spam negative" / "engine: GRAYMAIL positive"
    words = rest.split()
    if len(words) < 3 or words[0] != "engine:":
        return _info(mid, body)
    name = words[1]
    if name == "SPF" and "cached" in rest:  # "SPF Verdict Cache using cached verdict"
        return _info(mid, body)
    engine = _ENGINES.get(name, name.lower())
    verdict_words = words[2:]
    if engine == "antispam" and verdict_words[0] == "spam" and len(verdict_words) > 1:
        verdict_words = verdict_words[1:]
    return _verdict(engine, " ".join(verdict_words).lower(), interim, name, mid)


def _m_interim(mid: int, rest: str, body: str) -> Result:
    if rest.startswith("verdict using "):
        return _engine_verdict(mid, rest[14:], True, body)
    if rest.startswith("AV verdict using "):
        words = rest[17:].split(None, 1)
        if len(words) == 2:
            return _verdict("antivirus", words[1].lower(), True, words[0], mid)
    return _info(mid, body)


def _m_using(mid: int, rest: str, body: str) -> Result:
    return _engine_verdict(mid, rest, False, body)


def _m_antispam(mid: int, rest: str, body: str) -> Result:
    if not rest:
        return _info(mid, body)
    verdict, _, detail = rest.partition(" ")
    return _verdict("antispam", verdict.lower(), False, detail or None, mid)


def _m_antivirus(mid: int, rest: str, body: str) -> Result:
    if not rest:
        return _info(mid, body)
    verdict, _, detail = rest.partition(" ")
    result = _verdict("antivirus", verdict.lower(), False, None, mid)
    if detail:
        result[4]["virus_name"] = _unquote(detail.strip())
    return result


def _m_amp(mid: int, rest: str, body: str) -> Result:
    # "file reputation verdict : SKIPPED (no attachment in message)"
    _, sep, tail = rest.partition("verdict")
    if not sep:
        return _info(mid, body)
    tail = tail.lstrip(" :")
    verdict, _, detail = tail.partition(" ")
    if not verdict:
        return _info(mid, body)
    return _verdict("amp", verdict.lower(), False, detail.strip("() ") or None, mid)


def _m_outbreak(mid: int, rest: str, body: str) -> Result:
    # "Filters: verdict negative" / "Filters: verdict positive Threat Level: 5 ..."
    _, sep, tail = rest.partition("verdict ")
    if not sep:
        return _info(mid, body)
    verdict, _, detail = tail.partition(" ")
    return _verdict("outbreak", verdict.lower(), False, detail or None, mid)


def _m_was(mid: int, rest: str, body: str) -> Result:
    if rest.startswith("split"):
        match = _SPLIT.match(rest)
        if match is None:
            return unknown("MID was split: unrecognised shape")
        new_mid, policy, direction = match.groups()
        return (MSG_SPLIT, None, mid, None,
                {"new_mid": int(new_mid), "policy": policy, "direction": direction})
    if rest.startswith("generated "):
        return _m_generated(mid, rest[10:], body)
    if rest.startswith("too big"):
        match = _TOO_BIG.match(rest)
        if match is not None:
            sizes, scanner = match.groups()
            engine = _SCANNERS.get(scanner, scanner.lower())
            return _verdict(engine, "skipped", False, f"too big ({sizes})", mid)
    return _info(mid, body)


def _m_generated(mid: int, rest: str, body: str) -> Result:
    match = _GEN_BASED.match(rest)
    if match is not None:
        parent, reason = match.groups()
        return (MSG_GENERATED, None, mid, None,
                {"parent_mid": int(parent), "reason": reason, "bounce": False})
    match = _GEN_BOUNCE.match(rest)
    if match is not None:
        return (MSG_GENERATED, None, mid, None,
                {"parent_mid": int(match.group(1)), "reason": "bounce", "bounce": True})
    return unknown("MID generated: unrecognised shape")


def _m_dlp(mid: int, rest: str, body: str) -> Result:
    if rest.startswith("no violation"):
        return _verdict("dlp", "no violation", False, None, mid)
    match = _DLP.match(rest)
    if match is None:
        return _info(mid, body)
    severity, risk, policy = match.groups()
    result = _verdict("dlp", "violation", False, policy, mid)
    result[4]["severity"] = severity
    if risk is not None:
        result[4]["risk_factor"] = int(risk)
    return result


def _m_spf(mid: int, rest: str, body: str) -> Result:
    # "mailfrom identity a@example.com Pass (v=spf1)" / "helo identity postmaster None"
    match = _SPF.match(rest)
    if match is None:
        return _info(mid, body)
    scope, identity, verdict, _extra = match.groups()
    return _verdict("spf", verdict.lower(), False, f"{scope} {identity}", mid)


def _m_dkim(mid: int, rest: str, body: str) -> Result:
    # "pass signature verified (d=...)" / "permfail body hash did not verify [final] (d=...)"
    verdict, _, detail = rest.partition(" ")
    if not verdict or verdict in ("Signing", "signing", "Verifying", "verifying"):
        return _info(mid, body)
    return _verdict("dkim", verdict.lower(), False, detail or None, mid)


def _m_dmarc(mid: int, rest: str, body: str) -> Result:
    if rest.startswith("Verification "):
        verdict, _, detail = rest[13:].partition(" ")
        return _verdict("dmarc", verdict.lower(), False, detail or None, mid)
    match = _DMARC_VERDICT.search(rest)
    if match is None:
        return _info(mid, body)
    return _verdict("dmarc", match.group(1).lower(), False, rest, mid)


def _m_sdr(mid: int, rest: str, body: str) -> Result:
    match = _SDR_LEVEL.search(rest)
    if match is None or not rest.startswith("Consolidated"):
        return _info(mid, body)
    return _verdict("sdr", match.group(1).strip().lower(), False, rest, mid)


def _m_attachment(mid: int, rest: str, body: str) -> Result:
    return (MSG_ATTACHMENT, None, mid, None, {"name": _unquote(rest)})


def _m_custom(mid: int, rest: str, body: str) -> Result:
    _, sep, text = rest.partition("Entry:")
    if not sep:
        return _info(mid, body)
    return (MSG_CUSTOM, None, mid, None, {"text": text.strip()})


def _m_url(mid: int, rest: str, body: str) -> Result:
    cut = rest.find(_URL_REP)
    if cut < 0:
        url, _, detail = rest.partition(" ")
    else:
        url, detail = rest[:cut], rest[cut + 1:]
    return (MSG_URL, None, mid, None, {"url": url, "detail": detail or None})


def _m_quarantined(mid: int, rest: str, body: str) -> Result:
    match = _QUARANTINE.match(rest)
    if match is None:
        return unknown("MID quarantined: unrecognised shape")
    name, via = match.groups()
    return (MSG_QUARANTINE, None, mid, None, {"name": name, "via": via, "central": False})


def _m_enqueued(mid: int, rest: str, body: str) -> Result:
    if "centralized quarantine" not in rest:
        return _info(mid, body)
    match = _QUARANTINE.match(rest)
    if match is None:
        return unknown("MID enqueued for centralized quarantine: unrecognised shape")
    name, via = match.groups()
    return (MSG_QUARANTINE, None, mid, None, {"name": name, "via": via, "central": True})


def _m_released(mid: int, rest: str, body: str) -> Result:
    match = _RELEASE.match(rest)
    if match is None:
        return _info(mid, body)
    name, reason = match.groups()
    return (MSG_RELEASE, None, mid, None, {"name": name, "reason": reason})


def _m_rewritten(mid: int, rest: str, body: str) -> Result:
    match = _REWRITE.match(rest)
    if match is None:
        return unknown("MID rewritten: unrecognised shape")
    return (MSG_REWRITE, None, mid, None,
            {"new_mid": int(match.group(1)), "reason": match.group(2)})


def _m_queued(mid: int, rest: str, body: str) -> Result:
    if rest.startswith("for delivery"):
        return (MSG_QUEUED, None, mid, None, {})
    return _info(mid, body)


def _m_rid(mid: int, rest: str, body: str) -> Result:
    # "[0] Response '2.0.0 Ok: queued as 4XyZ'" (quoted or not)
    close = rest.find("]")
    if rest[:1] != "[" or close < 0:
        return _info(mid, body)
    tail = rest[close + 1:].lstrip()
    if not tail.startswith("Response"):
        return _info(mid, body)
    return (DLV_RESPONSE, None, mid, None,
            {"rids": _rid_list(rest[1:close]), "response": _unquote(tail[8:].strip())})


_MID_TABLE: Final[dict[str, MidHandler]] = {
    "ICID": _m_icid,
    "Message-ID": _m_message_id,
    "Subject": _m_subject,
    "ready": _m_ready,
    "matched": _m_matched,
    "interim": _m_interim,
    "using": _m_using,
    "antispam": _m_antispam,
    "antivirus": _m_antivirus,
    "AMP": _m_amp,
    "Outbreak": _m_outbreak,
    "was": _m_was,
    "generated": _m_generated,
    "DLP": _m_dlp,
    "SPF:": _m_spf,
    "DKIM:": _m_dkim,
    "DMARC:": _m_dmarc,
    "SDR:": _m_sdr,
    "attachment": _m_attachment,
    "Custom": _m_custom,
    "URL": _m_url,
    "quarantined": _m_quarantined,
    "enqueued": _m_enqueued,
    "released": _m_released,
    "rewritten": _m_rewritten,
    "queued": _m_queued,
    "RID": _m_rid,
}


# Verdict-like MID lines repeat word for word across messages ("using engine: CASE spam
# negative", "queued for delivery"): their (kind, data) is memoised by the text after the MID
# number, and each event gets its own shallow copy of the data (whose values are immutable).
_MEMO_WORDS: Final = frozenset({"using", "interim", "antispam", "antivirus", "AMP", "Outbreak",
                                "queued", "matched", "DKIM:", "DMARC:", "DLP"})
_MEMO_LIMIT = 4096
_memo: dict[str, tuple[str, dict[str, Any]]] = {}


def _mid(body: str) -> Result:
    parts = body.split(" ", 3)
    if len(parts) < 3:
        return unknown("MID line without text")
    number = parts[1]
    if not _is_number(number):
        number = number.rstrip(",:")  # "MID 256, Message Scanning Problem: ..."
        if not _is_number(number):
            return unknown("MID line: no MID number")
    mid = int(number)
    word = parts[2]
    rest = parts[3] if len(parts) > 3 else ""
    if word in _MEMO_WORDS:
        key = word + " " + rest
        hit = _memo.get(key)
        if hit is not None:
            return (hit[0], None, mid, None, hit[1].copy())
        result = _MID_TABLE[word](mid, rest, body)
        if result[0] != UNKNOWN and result[1] is None and result[3] is None and \
                not any(isinstance(value, (list, dict)) for value in result[4].values()):
            if len(_memo) >= _MEMO_LIMIT:
                _memo.clear()
            _memo[key] = (result[0], result[4].copy())
        return result
    handler = _MID_TABLE.get(word)
    if handler is None:
        return _info(mid, body)
    return handler(mid, rest, body)


# ---------------------------------------------------------------------------------------------
# Connection (ICID) lines
# ---------------------------------------------------------------------------------------------

_CONN_NEW = re.compile(
    r"SMTP ICID (\d{1,18}) interface (.*?) \(([^)]*)\) address (\S+)"
    r"(?: reverse dns host (\S*) verified (\w+))?"
)
_DLV_NEW = re.compile(r"SMTP DCID (\d{1,18}) interface (\S+) address (\S+)(?: port (\d{1,18}))?")
_HAT = re.compile(r"SG (\S+) match (.*?) SBRS (.*?)(?: country (.*))?$")
_HAT_NO_SBRS = re.compile(r"SG (\S+) match (.*)$")
_TLS_OK = re.compile(r"success(?: protocol (\S+))?(?: cipher (\S+))?(?: for (\S+))?")
_POLICY_ACTIONS: Final = frozenset({"ACCEPT", "RELAY", "REJECT", "TCPREFUSE", "CONTINUE"})


def _new(body: str) -> Result:
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


def _tls(rest: str) -> dict[str, Any] | None:
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
    if len(_conn_memo) >= _MEMO_LIMIT:
        _conn_memo.clear()
    _conn_memo[key] = data.copy()


def _icid(body: str) -> Result:
    parts = body.split(" ", 3)
    if len(parts) < 3 or not _is_number(parts[1]):
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
        data = _tls(rest)
        if data is not None:
            return (CONN_TLS, icid, None, None, data)
    return _icid_other(body, icid, word, rest)


def _policy(icid: int, word: str, rest: str) -> Result:
    match = _HAT.match(rest)
    if match is not None:
        group, matched, sbrs, country = match.groups()
        return (CONN_POLICY, icid, None, None, {
            "action": word, "sender_group": group, "match": matched,
            "sbrs": _float_or_none(sbrs), "country": country, "delayed": False})
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
        match = _RCPT.match(body, body.find("RID"))
        if match is not None:
            return _rcpt(icid, None, match)
    text = body.split(" ", 2)
    return (CONN_INFO, icid, None, None, {"text": text[2] if len(text) > 2 else ""})


_AUTH = re.compile(r"Auth: \(ICID (\d{1,18})\) (succeeded|failed) for user: (.*?)"
                   r"(?: using AUTH mechanism: (\S+))?(?: with profile: (.*))?$")
_AUTH_ICID = re.compile(r"Auth: \(ICID (\d{1,18})\) ?(.*)$")


def _smtp(body: str) -> Result:
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


# ---------------------------------------------------------------------------------------------
# Message / delivery lines
# ---------------------------------------------------------------------------------------------

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


def _message(body: str) -> Result:
    word_end = body.find(" ", 8)
    word = body[8:word_end] if word_end > 0 else body[8:]
    rest = body[8:]
    if word == "done":
        match = _DONE.match(rest)
        if match is None:
            return unknown("Message done: unrecognised shape")
        dcid, mid, rids, tail = match.groups()
        data: dict[str, Any] = {"rids": _rid_list(rids), "external_quarantine": False}
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
                    {"rids": _rid_list(rids), "until": until})
    return _system_or_unknown(body)


def _delivery(body: str) -> Result:
    match = _DLV_START.match(body, 9)
    if match is None:
        return _system_or_unknown(body)
    dcid, mid, rids, _tail = match.groups()
    return (DLV_START, None, int(mid), int(dcid), {"rids": _rid_list(rids)})


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


def _bounced_or_delayed(body: str) -> Result:
    delayed = body[0] == "D"
    rest = body[8:].lstrip()
    match = _DLV_FAIL.match(rest)
    if match is not None:
        dcid, mid, sender, recipient, rids, tail = match.groups()
        data = _split_failure(tail)
        data["rids"] = _rid_list(rids)
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


def _dcid(body: str) -> Result:
    parts = body.split(" ", 3)
    if len(parts) < 3 or not _is_number(parts[1]):
        return unknown("DCID line: no DCID number")
    dcid = int(parts[1])
    word = parts[2]
    if word == "close":
        return (DLV_CLOSE, None, None, dcid, {})
    if word == "TLS":
        data = _tls(parts[3] if len(parts) > 3 else "")
        if data is not None:
            return (DLV_TLS, None, None, dcid, data)
    text = body.split(" ", 2)
    return (DLV_INFO, None, None, dcid, {"text": text[2] if len(text) > 2 else ""})


_CONN_ERROR_FIELDS = re.compile(r"(?:^| )(domain|IP|port|details|interface|reason): ")


def _connection(body: str) -> Result:
    # "Connection Error: DCID 63 domain: example.com IP: 192.0.2.5 port: 25 details: ..."
    if not body.startswith("Connection Error: DCID "):
        return _system_or_unknown(body)
    rest = body[23:]
    number, _, tail = rest.partition(" ")
    if not _is_number(number):
        return unknown("Connection Error line: no DCID number")
    data: dict[str, Any] = {"text": tail}
    marks = list(_CONN_ERROR_FIELDS.finditer(tail))
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(tail)
        key = mark.group(1).lower()
        value = tail[mark.end():end].strip()
        data[key] = int(value) if key == "port" and _is_number(value) else value
    return (DLV_ERROR, None, None, int(number), data)


def _start(body: str) -> Result:
    parts = body.split(" ", 5)
    if len(parts) >= 5 and parts[1] == "MID" and parts[3] == "ICID" \
            and _is_number(parts[2]) and _is_number(parts[4]):
        return (MSG_START, int(parts[4]), int(parts[2]), None, {})
    if len(parts) >= 3 and parts[1] == "MID" and _is_number(parts[2]):
        return (MSG_START, None, int(parts[2]), None, {})
    return _system_or_unknown(body)


_ISQ_TAG = re.compile(r"ISQ: Tagging MID (\d{1,18}) for quarantine")
_RPC = re.compile(r"RPC Delivery start RCID (\d{1,18}) MID (\d{1,18}) to (.*)$")
_ANY_MID = re.compile(r"\bMID (\d{1,18})\b")


def _isq(body: str) -> Result:
    match = _ISQ_TAG.match(body)
    if match is None:
        return _system_or_unknown(body)
    return (MSG_QUARANTINE, None, int(match.group(1)), None,
            {"name": "spam", "via": "ISQ tagging", "central": False})


def _rpc(body: str) -> Result:
    match = _RPC.match(body)
    if match is not None:
        rcid, mid, target = match.groups()
        return (MSG_QUARANTINE, None, int(mid), None, {
            "name": "spam" if "Spam Quarantine" in target else target,
            "via": f"RPC RCID {rcid}", "central": "local" not in target, "rcid": int(rcid)})
    match = _ANY_MID.search(body)
    if match is not None:
        return (MSG_INFO, None, int(match.group(1)), None, {"text": body})
    return _system_or_unknown(body)


def _status(body: str) -> Result:
    words = body[8:].split()
    metrics: dict[str, int | float] = {}
    for index in range(0, len(words) - 1, 2):
        value = words[index + 1]
        if _is_number(value):
            metrics[words[index]] = int(value)
        else:
            number = _float_or_none(value)
            if number is not None:
                metrics[words[index]] = number
    if not metrics:
        return unknown("Status line without metrics")
    return (STATUS, None, None, None, {"metrics": metrics})


# Scanner subscriptions (``antivirus``, ``amp``) mention MIDs in their own phrasing.
_AV_MID = re.compile(r"antivirus - MID (\d{1,18})")
_AMP_MID = re.compile(r"\bMID = (\d{1,18})")


def _antivirus_log(body: str) -> Result:
    match = _AV_MID.search(body)
    if match is None:
        return _system_or_unknown(body)
    return (MSG_INFO, None, int(match.group(1)), None, {"text": body})


def _amp_log(body: str) -> Result:
    match = _AMP_MID.search(body)
    if match is None or match.group(1) == "0":
        return _system_or_unknown(body)
    return (MSG_INFO, None, int(match.group(1)), None, {"text": body})


# ---------------------------------------------------------------------------------------------
# Appliance noise: recognised prefixes become ``system``; the rest is ``unknown``.
# ---------------------------------------------------------------------------------------------

SYSTEM_PREFIXES: Final = (
    # file headers and housekeeping
    "Begin Logfile", "End Logfile", "Logfile rolled over", "Version:", "Time offset from UTC:",
    "System is coming up", "PID ", "Hostname is ", "The system time was changed",
    "An application fault", "Counters", "Log file",
    # alerts, licences, internal mail
    "A System/", "An Antivirus/", "A Hardware/", "A Updater/", "An Updater/", "A Virus/",
    "Error while sending alert", "Your \"", "Your ", "Internal SMTP", "URL category definitions",
    # services
    "graymail ", "Graymail ", "URL_REP_CLIENT:", "case ", "CASE ", "PF:", "ISQ:", "LDAP:",
    "SenderBase upload", "SDS_CLIENT", "Updater", "updater", "ECS:", "Reporting", "Tracking",
    "service_log_client", "TLS connection failed", "PERIODIC REPORTS", "lame DNS referral",
    "Received an invalid DNS", "DNS ", "Message containing attachment(s)",
    # GUI, authentication and HTTP subscriptions
    "User ", "The user ", "An authentication attempt", "login:", "logout:", "req:",
    "Error in http connection", "SSL error", "http service", "https service", "Session ",
    # AMP / file analysis without a MID
    "File ", "SHA256:", "Retrospective verdict", "Response received for file",
    "Message Tracking", "Cisco ", "IronPort ",
)

_L4TM_PREFIXES: Final = ("Firewall noted", "Firewall blocked", "Address ")


def _system_or_unknown(body: str) -> Result:
    if body.startswith(SYSTEM_PREFIXES):
        return (SYSTEM, None, None, None, {"text": body})
    if body.startswith(_L4TM_PREFIXES):
        return unknown("wsa l4tm log (web proxy, not ESA mail)")
    return unknown("unrecognised body")


_OFFSET = re.compile(r"Time offset from UTC: (-?\d{1,9}) seconds")
_VERSION = re.compile(r"Version: (\S+)(?: SN: (\S+))?")


def _time_offset(body: str) -> Result:
    match = _OFFSET.match(body)
    if match is None:
        return _system_or_unknown(body)
    return (SYSTEM, None, None, None, {"text": body, "utc_offset": int(match.group(1))})


def _version(body: str) -> Result:
    match = _VERSION.match(body)
    if match is None:
        return _system_or_unknown(body)
    data: dict[str, Any] = {"text": body, "version": match.group(1)}
    if match.group(2) is not None:
        data["serial"] = match.group(2)
    return (SYSTEM, None, None, None, data)


FIRST_WORD: Final[dict[str, Handler]] = {
    "Time": _time_offset,
    "Version:": _version,
    "MID": _mid,
    "ICID": _icid,
    "DCID": _dcid,
    "New": _new,
    "Start": _start,
    "Message": _message,
    "Delivery": _delivery,
    "Bounced:": _bounced_or_delayed,
    "Delayed:": _bounced_or_delayed,
    "SMTP": _smtp,
    "ISQ:": _isq,
    "RPC": _rpc,
    "Status:": _status,
    "Connection": _connection,
    "sophos": _antivirus_log,
    "mcafee": _antivirus_log,
    "File": _amp_log,
    "Response": _amp_log,
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
    return _system_or_unknown(body)


def unknown_reason(text: str, framed: bool) -> str:
    """Why a line whose body matched nothing is unknown: foreign text, or which part failed."""
    if not text:
        return "empty line"
    if _WSA_ACCESS.search(text) is not None:
        return "wsa access log (web proxy, not ESA mail)"
    if framed:
        return "unrecognised body"
    return "no ESA framing (no time, level or known body)"
