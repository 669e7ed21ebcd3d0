"""Compact facts: what the correlator keeps of each log line.

A state (one message, one connection, one delivery connection) is the *set* of facts of its
lines. A fact is one short string ``<code><dt>\\x1f<field>\\x1f<field>...``: a one-letter code
for the line shape, the line's time in milliseconds relative to the state's first time, and the
few fields the record and the timeline need (never the raw line). A state keeps its facts in one
string, separated and framed by :data:`SEP`, so that

- a line applied twice is found (``SEP + fact + SEP in blob``) and ignored: idempotence;
- the record is built by sorting the facts by (time, code rank, text): any arrival order of
  the same lines gives the same record;
- an open message costs a few hundred bytes (one ``str``), and exports as it is.

This module holds the codes, their order and the decoding; :mod:`streams.correlate.engine`
encodes (on the hot path) and :mod:`streams.correlate.records` folds decoded facts into records.
"""

from __future__ import annotations

from typing import Final

SEP: Final = "\x1e"
"""Between facts (and at both ends of a state's blob)."""
FS: Final = "\x1f"
"""Between the fields of one fact."""

# --- Message facts (state kind "m") ---------------------------------------------------------
# The order of this string is the tie-break for facts with the same time: the order in which
# an appliance processes a message, so that a same-second timeline reads naturally and folds
# (interim before final verdict, delayed before delivered, finished last) come out right.
MSG_ORDER: Final = "SFRIJZPvVAUCNQLWwXxGgqDYTHOrbKcE"
MSG_RANK: Final[dict[str, int]] = {code: pos for pos, code in enumerate(MSG_ORDER)}

M_START: Final = "S"  # icid
M_FROM: Final = "F"  # sender, icid
M_RCPT: Final = "R"  # rid, address, rejected(1|""), reason, icid
M_MSGID: Final = "I"  # message_id
M_SUBJECT: Final = "J"  # subject
M_READY: Final = "Z"  # size, sender
M_POLICY: Final = "P"  # policy, direction, rids ("" = all)
M_INTERIM: Final = "v"  # engine, verdict, detail, virus_name
M_VERDICT: Final = "V"  # engine, verdict, detail, virus_name
M_ATTACH: Final = "A"  # name
M_URL: Final = "U"  # url, detail
M_CUSTOM: Final = "C"  # text
M_INFO: Final = "N"  # text
M_QUAR: Final = "Q"  # name, via, central(1|"")
M_RELEASE: Final = "L"  # name, reason
M_REWRITE_TO: Final = "W"  # new_mid, reason                (on the old MID)
M_REWRITE_FROM: Final = "w"  # old_mid, reason              (on the new MID)
M_SPLIT_TO: Final = "X"  # new_mid, policy, direction        (on the old MID)
M_SPLIT_FROM: Final = "x"  # old_mid, policy, direction      (on the new MID)
M_GEN_TO: Final = "G"  # new_mid, reason, bounce(1|"")       (on the origin)
M_GEN_FROM: Final = "g"  # origin_mid, reason, bounce(1|"")  (on the generated MID)
M_QUEUED: Final = "q"  # -
M_DLV_START: Final = "D"  # dcid, rids
M_DELAYED: Final = "Y"  # dcid, rids, code, reason, response
M_PENDING: Final = "T"  # rids, until
M_BOUNCED: Final = "H"  # dcid, rids, code, reason, response
M_DONE: Final = "O"  # dcid, rids, external_quarantine(1|"")
DCID_CODES: Final = M_DLV_START + M_DELAYED + M_BOUNCED + M_DONE
"""Message facts whose first field is a delivery connection (DCID)."""
M_RESPONSE: Final = "r"  # rids, response
M_BOUNCE_LOG: Final = "b"  # rid, recipient, reason, response, sender, delayed(1|"")
M_ABORTED: Final = "K"  # reason
M_FINISHED: Final = "E"  # outcome
M_CEF: Final = "c"  # the Consolidated Event Log line of the message: see CEF_KEYS
CEF_KEYS: Final = (
    "ESAICID", "suser", "duser", "cs4", "msg", "ESAMsgSize", "cs1", "deviceDirection", "act",
    "ESAFinalActionDetails", "ESAASVerdict", "ESAAVVerdict", "ESAAMPVerdict", "ESAGMVerdict",
    "ESAOFVerdict", "ESADLPVerdict", "ESASPFVerdict", "ESADKIMVerdict", "ESADMARCVerdict",
    "sourceAddress", "sourceHostName", "cfp1", "ESASenderGroup", "ESAMailFlowPolicy", "ESADCID",
)
"""The extensions of a consolidated (CEF) line a message record uses, in their stored order."""

CHILD_CODES: Final = M_REWRITE_TO + M_SPLIT_TO + M_GEN_TO
PARENT_CODES: Final = M_REWRITE_FROM + M_SPLIT_FROM + M_GEN_FROM
INHERITED_CODES: Final = M_START + M_FROM + M_RCPT + M_MSGID + M_SUBJECT + M_READY + M_POLICY + \
    M_ATTACH
"""Facts of a parent that its children inherit (when they do not log the field themselves)."""

# --- Connection facts (state kind "c") ------------------------------------------------------
CONN_ORDER: Final = "NPTAMC"
CONN_RANK: Final[dict[str, int]] = {code: pos for pos, code in enumerate(CONN_ORDER)}
C_NEW: Final = "N"  # interface, interface_ip, ip, rdns, verified(1|0|"")
C_POLICY: Final = "P"  # action, sender_group, match, sbrs, country, delayed(1|"")
C_TLS: Final = "T"  # success(1|""), protocol, cipher, error
C_AUTH: Final = "A"  # success(1|""), user, mechanism, profile
C_MID: Final = "M"  # mid (no time: one fact per MID however many lines name it)
C_CLOSE: Final = "C"  # lost(1|"")
CLIENT_CODES: Final = C_NEW + C_POLICY + C_TLS + C_AUTH
"""Connection facts that shape the client of its messages."""

# --- Delivery connection facts (state kind "d") ---------------------------------------------
DLV_ORDER: Final = "NTC"
DLV_RANK: Final[dict[str, int]] = {code: pos for pos, code in enumerate(DLV_ORDER)}
D_NEW: Final = "N"  # interface, ip, port
D_TLS: Final = "T"  # success(1|""), protocol, cipher, error
D_CLOSE: Final = "C"  # -

Fact = tuple[int, int, str, str, int | None, list[str]]
"""A decoded fact: (sort time, code rank, the fact string, code, time in ms or None, fields).
Tuples sort in the order records are folded in (facts without a time last); the fields list
is padded with empty strings, so a fold can index up to :data:`FIELDS` fields without checks."""

_NO_TIME: Final = 1 << 62
FIELDS: Final = 6
_PAD: Final[list[str]] = [""] * FIELDS


ENGINE_CODES: Final[dict[str, str]] = {
    "antispam": "a", "antivirus": "v", "amp": "m", "graymail": "g", "outbreak": "o", "dlp": "l",
    "spf": "s", "dkim": "k", "dmarc": "d", "sdr": "r",
}
VERDICT_CODES: Final[dict[str, str]] = {
    "negative": "n", "positive": "p", "suspect": "s", "clean": "c", "viral": "x", "pass": "P",
    "fail": "F", "none": "0", "neutral": "N", "softfail": "S", "temperror": "t",
    "permerror": "e", "skipped": "k", "encrypted": "E", "unscannable": "u", "malware": "M",
    "violation": "V", "no violation": "v", "bulk": "b", "marketing_mail": "m",
}
"""Frequent verdict words and engines, stored as one letter (an open message keeps a dozen)."""
_NAMES: Final[dict[str, dict[str, str]]] = {
    "engine": {code: name for name, code in ENGINE_CODES.items()},
    "verdict": {code: name for name, code in VERDICT_CODES.items()},
}


def shorten(word: str, codes: dict[str, str]) -> str:
    """A frequent word as its letter; other words as they are (one-letter words escaped)."""
    code = codes.get(word)
    if code is not None:
        return code
    return word if len(word) != 1 and word[:1] != "=" else "=" + word


def lengthen(text: str, what: str) -> str:
    """The inverse of :func:`shorten` (``what``: ``engine`` or ``verdict``)."""
    if len(text) == 1:
        return _NAMES[what].get(text, text)
    return text[1:] if text[:1] == "=" else text


def clean(text: object) -> str:
    """A field value as stored: ``None`` -> ``""``; the two separators cannot occur."""
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():
        return value
    return value.replace(SEP, " ").replace(FS, " ")


def flag(value: object) -> str:
    """A boolean field: ``"1"`` for true, ``""`` for false or unknown."""
    return "1" if value else ""


def join(values: tuple[object, ...]) -> str:
    """Fields joined into a fact's text: ``None`` as ``""``, separators replaced."""
    try:
        text = FS.join(values)  # type: ignore[arg-type]  # the common case: all str
    except TypeError:
        return FS.join([clean(value) for value in values])
    if SEP in text or text.count(FS) != len(values) - 1:
        return FS.join([clean(value) for value in values])
    return text


def opt(value: object) -> str:
    """A number field: ``""`` when absent."""
    return "" if value is None else str(value)


def rid_text(rids: object) -> str:
    """A RID list as stored: ``"0,1"``; anything else (unknown) as ``""``."""
    if isinstance(rids, list | tuple):
        return ",".join(str(r) for r in rids if type(r) is int and r >= 0)
    if type(rids) is int and rids >= 0:
        return str(rids)
    return ""


def rid_list(text: str) -> list[int]:
    """The inverse of :func:`rid_text`."""
    return [int(part) for part in text.split(",") if part.isdigit() and part.isascii()]


def decode(blob: str, base: int | None, rank: dict[str, int]) -> list[Fact]:
    """The facts of a state, sorted by (time, code rank, text): the order-independent order.

    Facts without a time sort after all timed facts (they come from framings without a time).
    """
    out: list[Fact] = []
    start = blob.find(SEP)
    body = blob[start + 1 : -1]
    if start < 0 or not body:
        return out
    append = out.append
    for fact in body.split(SEP):
        fields = fact.split(FS)
        head = fields[0]
        code = head[:1]
        dt = head[1:]
        if dt and base is not None:
            ts = base + int(dt)
            append((ts, rank.get(code, 99), fact, code, ts, fields[1:] + _PAD))
        else:
            append((_NO_TIME, rank.get(code, 99), fact, code, None, fields[1:] + _PAD))
    out.sort()
    return out


def codes_in(blob: str, codes: str) -> list[list[str]]:
    """The fields of every fact whose code is in ``codes`` (unsorted; for routing lookups)."""
    out: list[list[str]] = []
    for code in codes:
        needle = SEP + code
        pos = blob.find(needle)
        while pos >= 0:
            end = blob.find(SEP, pos + 1)
            out.append(blob[pos + 1 : end].split(FS)[1:])
            pos = blob.find(needle, end)
    return out


def count_codes(blob: str, codes: str) -> int:
    """How many facts of ``blob`` have a code in ``codes``."""
    return sum(blob.count(SEP + code) for code in codes)
