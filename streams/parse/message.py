"""Message lines: ``MID <n> <word> ...`` and the other lines that name a MID first.

``MID`` lines dispatch again, on the word after the number, through :data:`_MID_TABLE`: envelope
(sender, recipients, size, Message-ID, subject), policy matches, scanner verdicts, splits and
generated messages (lineage), rewrites, quarantine and release, queueing, remote responses.
Verdict-like lines repeat word for word and are memoised. Also here: ``Start MID`` (the message
begins) and the quarantine hand-offs ``ISQ: Tagging MID`` and ``RPC Delivery start``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from streams.events import (
    DLV_RESPONSE,
    MSG_ATTACHMENT,
    MSG_CUSTOM,
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
    UNKNOWN,
)
from streams.parse.appliance import system_or_unknown
from streams.parse.fields import (
    MEMO_LIMIT,
    Result,
    is_number,
    mail_address,
    rid_list,
    unknown,
    unquote,
)

MidHandler = Callable[[int, str, str], Result]
"""A handler for ``MID <n> <word> <rest>``: gets the MID, ``rest`` and the whole body."""

RCPT = re.compile(r"RID (\d{1,18}) To: ?(<[^>]*>|\S*)(?: (.*))?$")
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
    number = rest[:space]
    if space <= 0 or len(number) > 18 or not number.isdecimal():  # is_number, inline
        return unknown("MID ICID line: no ICID number")
    icid = int(number)
    tail = rest[space + 1:]
    if tail.startswith("From:"):
        return (MSG_FROM, icid, mid, None, {"sender": mail_address(tail[5:])})
    # "RID 0 To: <b@example.org>[ Rejected by RAT]": string operations, no regex
    parts = tail.split(" ", 3)
    if len(parts) == 4 and parts[0] == "RID" and parts[2] == "To:" and len(parts[1]) <= 18 \
            and parts[1].isdecimal():
        address = parts[3]
        close = address.find(">") if address[:1] == "<" else -1
        if close > 0 and close == len(address) - 1:
            return (MSG_RCPT, icid, mid, None,
                    {"rid": int(parts[1]), "address": address[1:-1], "rejected": False})
    match = RCPT.match(tail)
    if match is None:
        return unknown("MID ICID line: neither From: nor RID To:")
    return rcpt(icid, mid, match)


def rcpt(icid: int | None, mid: int | None, match: re.Match[str]) -> Result:
    rid, address, trailer = match.groups()
    data: dict[str, Any] = {"rid": int(rid), "address": mail_address(address),
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
    return (MSG_MESSAGE_ID, None, mid, None, {"message_id": unquote(rest)})


def _m_subject(mid: int, rest: str, body: str) -> Result:
    return (MSG_SUBJECT, None, mid, None, {"subject": unquote(rest)})


def _m_ready(mid: int, rest: str, body: str) -> Result:
    size, _sep, sender = rest.partition(" bytes")
    if not is_number(size):
        return unknown("MID ready line: no size")
    data: dict[str, Any] = {"size": int(size)}
    if sender.startswith(" from "):
        data["sender"] = mail_address(sender[6:])
    return (MSG_READY, None, mid, None, data)


def _m_matched(mid: int, rest: str, body: str) -> Result:
    match = _POLICY.match(rest)
    if match is None:
        return _info(mid, body)
    rids, policy, direction = match.groups()
    return (MSG_POLICY, None, mid, None, {
        "policy": policy, "direction": direction,
        "rids": None if rids is None else rid_list(rids)})


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
        result[4]["virus_name"] = unquote(detail.strip())
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
    return (MSG_ATTACHMENT, None, mid, None, {"name": unquote(rest)})


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
            {"rids": rid_list(rest[1:close]), "response": unquote(tail[8:].strip())})


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
_memo: dict[str, tuple[str, dict[str, Any]]] = {}


def mid_line(body: str) -> Result:
    parts = body.split(" ", 3)
    if len(parts) < 3:
        return unknown("MID line without text")
    number = parts[1]
    if not (len(number) <= 18 and number.isdecimal()):  # is_number, inline on the hot path
        number = number.rstrip(",:")  # "MID 256, Message Scanning Problem: ..."
        if not is_number(number):
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
            if len(_memo) >= MEMO_LIMIT:
                _memo.clear()
            _memo[key] = (result[0], result[4].copy())
        return result
    handler = _MID_TABLE.get(word)
    if handler is None:
        return _info(mid, body)
    return handler(mid, rest, body)



def start_line(body: str) -> Result:
    parts = body.split(" ", 5)
    if len(parts) >= 5 and parts[1] == "MID" and parts[3] == "ICID" and len(parts[2]) <= 18 \
            and parts[2].isdecimal() and len(parts[4]) <= 18 and parts[4].isdecimal():
        return (MSG_START, int(parts[4]), int(parts[2]), None, {})
    if len(parts) >= 3 and parts[1] == "MID" and is_number(parts[2]):
        return (MSG_START, None, int(parts[2]), None, {})
    return system_or_unknown(body)


_ISQ_TAG = re.compile(r"ISQ: Tagging MID (\d{1,18}) for quarantine")
_RPC = re.compile(r"RPC Delivery start RCID (\d{1,18}) MID (\d{1,18}) to (.*)$")
_ANY_MID = re.compile(r"\bMID (\d{1,18})\b")


def isq_line(body: str) -> Result:
    match = _ISQ_TAG.match(body)
    if match is None:
        return system_or_unknown(body)
    return (MSG_QUARANTINE, None, int(match.group(1)), None,
            {"name": "spam", "via": "ISQ tagging", "central": False})


def rpc_line(body: str) -> Result:
    match = _RPC.match(body)
    if match is not None:
        rcid, mid, target = match.groups()
        return (MSG_QUARANTINE, None, int(mid), None, {
            "name": "spam" if "Spam Quarantine" in target else target,
            "via": f"RPC RCID {rcid}", "central": "local" not in target, "rcid": int(rcid)})
    match = _ANY_MID.search(body)
    if match is not None:
        return (MSG_INFO, None, int(match.group(1)), None, {"text": body})
    return system_or_unknown(body)
