"""Folding facts into records: the message record and the connection record.

Pure functions of states. A record is computed from *all* facts of its state, sorted by
(time, code rank, text), never from the order the lines came in; what it joins from other
states (the client of its connection, the envelope of its parent, the address of a delivery
connection) is read from those states while they exist and from a snapshot after.

The record's ``revision`` is the number of distinct log lines (facts) it was built from, its
own and joined ones (plus one once expired). It therefore grows each time the record changes,
and it is the same however the lines were ordered, duplicated, or the engine restarted.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

from streams import events as ev
from streams.correlate import facts as fc
from streams.correlate.state import EXPIRED, PARENT, ConnState, Host, MsgState

Record = dict[str, Any]

_MAX_LINEAGE_DEPTH: Final = 8

RCPT_STATUSES: Final = (
    "delivered", "hard_bounced", "soft_bounced", "quarantined", "dropped", "rejected", "aborted",
    "pending",
)
MESSAGE_STATUSES: Final = (
    "delivered", "bounced", "partially_delivered", "quarantined", "dropped", "aborted",
    "rewritten", "in_flight",
)
TAGS: Final = (
    "virus_positive", "spam_positive", "suspect_spam", "graymail", "delivered", "hard_bounced",
    "soft_bounced", "outbreak_quarantine", "spam_quarantine", "policy_quarantine",
    "dlp_violation", "dropped", "aborted",
)
VERDICT_KEYS: Final = (
    "antispam", "antivirus", "virus_name", "amp", "graymail", "outbreak", "dlp", "spf", "dkim",
    "dmarc",
)
CLIENT_KEYS: Final = (
    "ip", "rdns", "rdns_verified", "sbrs", "sender_group", "flow", "interface", "country", "tls",
)

_KIND_OF_CODE: Final[dict[str, str]] = {
    fc.M_START: ev.MSG_START, fc.M_FROM: ev.MSG_FROM, fc.M_RCPT: ev.MSG_RCPT,
    fc.M_MSGID: ev.MSG_MESSAGE_ID, fc.M_SUBJECT: ev.MSG_SUBJECT, fc.M_READY: ev.MSG_READY,
    fc.M_POLICY: ev.MSG_POLICY, fc.M_INTERIM: ev.MSG_VERDICT, fc.M_VERDICT: ev.MSG_VERDICT,
    fc.M_ATTACH: ev.MSG_ATTACHMENT, fc.M_URL: ev.MSG_URL, fc.M_CUSTOM: ev.MSG_CUSTOM,
    fc.M_INFO: ev.MSG_INFO, fc.M_QUAR: ev.MSG_QUARANTINE, fc.M_RELEASE: ev.MSG_RELEASE,
    fc.M_REWRITE_TO: ev.MSG_REWRITE, fc.M_REWRITE_FROM: ev.MSG_REWRITE,
    fc.M_SPLIT_TO: ev.MSG_SPLIT, fc.M_SPLIT_FROM: ev.MSG_SPLIT, fc.M_GEN_TO: ev.MSG_GENERATED,
    fc.M_GEN_FROM: ev.MSG_GENERATED, fc.M_QUEUED: ev.MSG_QUEUED, fc.M_DLV_START: ev.DLV_START,
    fc.M_DELAYED: ev.DLV_DELAYED, fc.M_PENDING: ev.DLV_PENDING, fc.M_BOUNCED: ev.DLV_BOUNCED,
    fc.M_DONE: ev.DLV_DONE, fc.M_RESPONSE: ev.DLV_RESPONSE, fc.M_BOUNCE_LOG: ev.BOUNCE_LOG,
    fc.M_ABORTED: ev.MSG_ABORTED, fc.M_FINISHED: ev.MSG_FINISHED, fc.M_CEF: ev.CEF,
}
_CONN_KIND_OF_CODE: Final[dict[str, str]] = {
    fc.C_NEW: ev.CONN_NEW, fc.C_POLICY: ev.CONN_POLICY, fc.C_TLS: ev.CONN_TLS,
    fc.C_AUTH: ev.CONN_AUTH, fc.C_MID: ev.MSG_START, fc.C_CLOSE: ev.CONN_CLOSE,
}

_NEGATIVE: Final = frozenset(
    {"", "negative", "clean", "none", "no violation", "skipped", "pass", "unscannable",
     "encrypted", "neutral", "not scanned", "unknown"}
)
_FINAL_RCPT: Final = frozenset({"delivered", "hard_bounced", "dropped", "rejected", "aborted"})


# --- Small helpers ----------------------------------------------------------------------------

_ISO_SECONDS: dict[int, str] = {}
"""Memo of the second part of ISO times (lines of one second share it); bounded."""


def iso(ms: int | None) -> str | None:
    """Milliseconds since the epoch -> ISO 8601 UTC (``2024-01-31T12:00:00Z``, ms when not 0)."""
    if ms is None:
        return None
    sec, frac = divmod(ms, 1000)
    text = _ISO_SECONDS.get(sec)
    if text is None:
        if len(_ISO_SECONDS) >= 4096:
            _ISO_SECONDS.clear()
        t = time.gmtime(sec)
        text = _ISO_SECONDS[sec] = (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
                                    f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}")
    return f"{text}.{frac:03d}Z" if frac else f"{text}Z"


def record_id(kind: str, host: str, ident: int, start: str) -> str:
    """The document id of a record: a digest of (appliance, kind, MID/ICID, start time in ms).

    The same message gives the same id in every run and revision; the same MID on another
    appliance, or a MID reused after a counter restart (another start time), another one.
    """
    digest = hashlib.blake2b(
        f"{host}\x00{kind}\x00{ident}\x00{start}".encode(), digest_size=12
    ).hexdigest()
    return f"{kind}-{digest}"


def _none(text: str) -> str | None:
    return text or None


def _int(text: str) -> int | None:
    """A non-negative integer field (ids, RIDs, sizes), else None."""
    return int(text) if text.isdigit() and text.isascii() else None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# --- Connections ------------------------------------------------------------------------------

def empty_client() -> dict[str, Any]:
    """A client with every key present and unknown."""
    return dict.fromkeys(CLIENT_KEYS)


def fold_client(facts: list[fc.Fact]) -> tuple[dict[str, Any], str | None, int]:
    """(client, SMTP AUTH user, number of facts it was built from) from connection facts."""
    client = empty_client()
    auth_user: str | None = None
    used = 0
    for _t, _r, _x, code, _ts, f in facts:
        if code == fc.C_NEW:
            used += 1
            client["interface"] = _none(f[0])
            client["ip"] = _none(f[2])
            client["rdns"] = _none(f[3])
            verified = f[4]
            client["rdns_verified"] = True if verified == "1" else (
                False if verified == "0" else None)
        elif code == fc.C_POLICY:
            used += 1
            client["flow"] = _none(f[0])
            client["sender_group"] = _none(f[1])
            client["sbrs"] = _float(f[3])
            client["country"] = _none(f[4])
        elif code == fc.C_TLS:
            used += 1
            if f[0]:
                client["tls"] = f[1] or "TLS"
            elif client["tls"] is None:
                client["tls"] = "failed"
        elif code == fc.C_AUTH:
            used += 1
            if f[0]:
                auth_user = _none(f[1])
    return client, auth_user, used


def _conn_text(code: str, f: list[str], icid: int) -> str:
    if code == fc.C_NEW:
        verified = {"1": "verified yes", "0": "verified no"}.get(f[4], "")
        return (f"New SMTP ICID {icid} interface {f[0]} ({f[1]}) address "
                f"{f[2]} reverse dns host {f[3] or 'unknown'} {verified}").strip()
    if code == fc.C_POLICY:
        sbrs = f[3] or "None"
        text = f"ICID {icid} {f[0]} SG {f[1]} match {f[2]} SBRS {sbrs}"
        if f[4]:
            text += f" country {f[4]}"
        return text + (" (delayed)" if f[5] else "")
    if code == fc.C_TLS:
        if f[0]:
            return f"ICID {icid} TLS success protocol {f[1]} cipher {f[2]}"
        return f"ICID {icid} TLS failed: {f[3]}"
    if code == fc.C_AUTH:
        outcome = "succeeded" if f[0] else "failed"
        return (f"SMTP Auth: (ICID {icid}) {outcome} for user: {f[1]} using AUTH "
                f"mechanism: {f[2]} with profile: {f[3]}")
    if code == fc.C_MID:
        return f"Start MID {f[0]} ICID {icid}"
    return f"ICID {icid} {'lost' if f[0] else 'close'}"


def connection_record(host: Host, s: ConnState) -> tuple[Record, int]:
    """The connection record of ``s`` and its revision."""
    facts = fc.decode(s.text(), s.base, fc.CONN_RANK)
    client, auth_user, used = fold_client(facts)  # the other facts do not change it
    started = closed = None
    lost = False
    action: str | None = None
    mids: set[int] = set()
    events: list[dict[str, Any]] = []
    for _t, _r, _x, code, ts, f in facts:
        if code == fc.C_NEW and started is None:
            started = ts
        elif code == fc.C_POLICY:
            action = _none(f[0])
        elif code == fc.C_MID:
            mid = _int(f[0])
            if mid is not None:
                mids.add(mid)
            continue  # the message records carry these; not a connection event
        elif code == fc.C_CLOSE:
            closed = ts if closed is None else closed
            lost = lost or bool(f[0])
        events.append({"ts": iso(ts), "kind": _CONN_KIND_OF_CODE.get(code, code),
                       "text": _conn_text(code, f, s.ident)})
    if mids and s.folded_n != s.n:  # what its messages join, while at it
        s.folded, s.folded_n = fold_client_text(client, auth_user, used), s.n
    timed = [fact[4] for fact in facts if fact[4] is not None]
    if started is None and timed:
        started = timed[0]
    start_key = _frozen_start(s, started)
    expired = bool(s.flags & EXPIRED)
    revision = s.n + (1 if expired else 0)
    record: Record = {
        "type": "connection",
        "id": record_id("c", host.name, s.ident, start_key),
        "host": host.name,
        "icid": s.ident,
        "revision": revision,
        "started_at": iso(started),
        "closed_at": iso(closed),
        "updated_at": iso(timed[-1] if timed else None),
        "complete": closed is not None,
        "expired": expired,
        "lost": lost,
        "client": client,
        "action": action,
        "auth_user": auth_user,
        "mids": sorted(mids),
        "events": events,
    }
    return record, revision


def _frozen_start(s: MsgState | ConnState, started: int | None, freeze: bool = True) -> str:
    """The start time the id is made of: frozen at the first emission so revisions keep it."""
    header = s.header()
    if header:
        return header
    value = "-" if started is None else str(started)
    if freeze:
        s.set_header(value)
    return value


# --- Messages ---------------------------------------------------------------------------------

class _Fold:
    """The message fields from its own facts (joins come after)."""

    __slots__ = (
        "aborted",
        "attachments",
        "cef_client",
        "children",
        "dcids",
        "direction",
        "events",
        "finals",
        "finished",
        "finished_outcome",
        "icid",
        "inheritable",
        "message_id",
        "moved",
        "parent",
        "parent_kind",
        "policies",
        "policy",
        "quarantines",
        "rcpts",
        "ready_sender",
        "sender",
        "size",
        "started",
        "subject",
        "tags",
        "timed",
        "verdicts",
    )

    def __init__(self) -> None:
        self.started: int | None = None
        self.timed: list[int] = []
        self.finished: int | None = None
        self.finished_outcome: str | None = None
        self.aborted: str | None = None
        self.icid: int | None = None
        self.sender: str | None = None
        self.ready_sender: str | None = None
        self.rcpts: dict[int, dict[str, Any]] = {}
        self.message_id: str | None = None
        self.subject: str | None = None
        self.size: int | None = None
        self.attachments: list[str] = []
        self.direction: str | None = None
        self.policy: str | None = None
        self.policies: list[tuple[str, str]] = []
        self.verdicts: dict[str, Any] = dict.fromkeys(VERDICT_KEYS)
        self.quarantines: list[dict[str, Any]] = []
        self.tags: set[str] = set()
        self.finals: set[str] = set()
        self.cef_client: dict[str, Any] | None = None
        self.parent: int | None = None
        self.parent_kind: str | None = None
        self.children: list[tuple[str, int, str]] = []
        self.moved: dict[int, int] = {}
        self.dcids: set[int] = set()
        self.events: list[dict[str, Any]] = []
        self.inheritable = 0


_FoldStep = Callable[["_Fold", int | None, list[str]], None]


def _rcpt(fold: _Fold, rid: int) -> dict[str, Any]:
    rcpt = fold.rcpts.get(rid)
    if rcpt is None:
        rcpt = {"rid": rid, "address": None, "status": "pending", "dcid": None,
                "response": None, "updated_at": None}
        fold.rcpts[rid] = rcpt
    return rcpt


def _set_status(rcpt: dict[str, Any], status: str, ts: int | None) -> None:
    rcpt["status"] = status
    if ts is not None:
        rcpt["updated_at"] = ts


def _rids(fold: _Fold, text: str) -> list[int]:
    rids = fc.rid_list(text)
    return rids if rids or text else sorted(fold.rcpts)


def _verdict(fold: _Fold, code: str, f: list[str]) -> None:
    engine, verdict = fc.lengthen(f[0], "engine"), fc.lengthen(f[1], "verdict")
    if engine not in fold.verdicts or engine == "virus_name":
        return
    interim = code == fc.M_INTERIM
    if interim and engine in fold.finals:
        return  # a final verdict was seen earlier; interim ones never override it
    if engine == "spf" and "helo" in f[2] and fold.verdicts["spf"] is not None:
        return  # the mail-from identity is the verdict that matters
    fold.verdicts[engine] = verdict or None
    if not interim:
        fold.finals.add(engine)
    if engine == "antivirus" and f[3]:
        fold.verdicts["virus_name"] = f[3]


def _verdict_text(f: list[str], interim: bool) -> str:
    text = (f"{fc.lengthen(f[0], 'engine')} {'interim ' if interim else ''}verdict "
            f"{fc.lengthen(f[1], 'verdict')}")
    if f[3]:
        text += f" '{f[3]}'"
    return f"{text} ({f[2]})" if f[2] else text


def _rcpt_text(f: list[str], mid: int) -> str:
    text = f"RID {f[0]} To: <{f[1]}>"
    return f"{text} Rejected: {f[3] or 'by RAT'}" if f[2] else text


def _policy_text(f: list[str], mid: int) -> str:
    who = f"recipients [{f[2]}]" if f[2] else "all recipients"
    return f"matched {who} for per-recipient policy {f[0]} in the {f[1] or 'unknown'} table"


def _quarantine_text(f: list[str], mid: int) -> str:
    text = f"quarantined to \"{f[0]}\""
    if f[1]:
        text += f" ({f[1]})"
    return text + (" (centralized)" if f[2] else "")


def _attempt_text(word: str) -> Callable[[list[str], int], str]:
    def text(f: list[str], mid: int) -> str:
        return f"{word}: DCID {f[0]} to RID [{f[1]}] - {f[2]} - {f[3]} {f[4]}".rstrip()
    return text


_TEXT: Final[dict[str, Callable[[list[str], int], str]]] = {
    fc.M_START: lambda f, mid: f"Start MID {mid} ICID {f[0]}",
    fc.M_FROM: lambda f, mid: f"From: <{f[0]}>",
    fc.M_RCPT: _rcpt_text,
    fc.M_MSGID: lambda f, mid: f"Message-ID '{f[0]}'",
    fc.M_SUBJECT: lambda f, mid: f"Subject '{f[0]}'",
    fc.M_READY: lambda f, mid: f"ready {f[0]} bytes from <{f[1]}>",
    fc.M_POLICY: _policy_text,
    fc.M_INTERIM: lambda f, mid: _verdict_text(f, True),
    fc.M_VERDICT: lambda f, mid: _verdict_text(f, False),
    fc.M_ATTACH: lambda f, mid: f"attachment '{f[0]}'",
    fc.M_URL: lambda f, mid: f"URL {f[0]} {f[1]}".rstrip(),
    fc.M_CUSTOM: lambda f, mid: f"Custom Log Entry: {f[0]}",
    fc.M_INFO: lambda f, mid: f[0],
    fc.M_QUAR: _quarantine_text,
    fc.M_RELEASE: lambda f, mid: f"released from quarantine \"{f[0]}\"" + (
        f" ({f[1]})" if f[1] else ""),
    fc.M_REWRITE_TO: lambda f, mid: f"rewritten to MID {f[0]}" + (f" by {f[1]}" if f[1] else ""),
    fc.M_REWRITE_FROM: lambda f, mid: f"rewritten from MID {f[0]}" + (
        f" by {f[1]}" if f[1] else ""),
    fc.M_SPLIT_TO: lambda f, mid: f"split creating MID {f[0]} due to per-recipient policy "
                                  f"{f[1]}",
    fc.M_SPLIT_FROM: lambda f, mid: f"split from MID {f[0]} due to per-recipient policy {f[1]}",
    fc.M_GEN_TO: lambda f, mid: f"bounce message MID {f[0]} generated" if f[2] else
    f"MID {f[0]} generated based on it ({f[1]})",
    fc.M_GEN_FROM: lambda f, mid: f"generated for bounce of MID {f[0]}" if f[2] else
    f"generated based on MID {f[0]} ({f[1]})",
    fc.M_QUEUED: lambda f, mid: "queued for delivery",
    fc.M_DLV_START: lambda f, mid: f"Delivery start DCID {f[0]} to RID [{f[1]}]",
    fc.M_DELAYED: _attempt_text("Delayed"),
    fc.M_BOUNCED: _attempt_text("Bounced"),
    fc.M_PENDING: lambda f, mid: f"to RID [{f[0]}] pending till {f[1]}",
    fc.M_DONE: lambda f, mid: f"Message done DCID {f[0]} to RID [{f[1]}]" + (
        " (external quarantine)" if f[2] else ""),
    fc.M_RESPONSE: lambda f, mid: f"RID [{f[0]}] Response {f[1]}",
    fc.M_BOUNCE_LOG: lambda f, mid: (f"{'Delayed' if f[5] else 'Bounced'}: RID {f[0]} To: "
                                     f"<{f[1]}> {f[2]} {f[3]}").rstrip(),
    fc.M_ABORTED: lambda f, mid: f"Message aborted: {f[0]}",
    fc.M_FINISHED: lambda f, mid: f"Message finished {f[0]}",
    fc.M_CEF: lambda f, mid: f"Consolidated event: {f[8] or 'unknown action'}" + (
        f" ({f[9]})" if f[9] else ""),
}
"""Code -> the timeline text of a fact (close to the log line it came from)."""


def _msg_text(code: str, f: list[str], mid: int) -> str:
    render = _TEXT.get(code)
    return f[0] if render is None else render(f, mid)


def _on_start(fold: _Fold, ts: int | None, f: list[str]) -> None:
    if fold.started is None:
        fold.started = ts
    if fold.icid is None:
        fold.icid = _int(f[0])


def _on_from(fold: _Fold, ts: int | None, f: list[str]) -> None:
    fold.sender = f[0]
    if fold.icid is None:
        fold.icid = _int(f[1])


def _on_rcpt(fold: _Fold, ts: int | None, f: list[str]) -> None:
    rid = _int(f[0])
    if rid is None:
        return
    rcpt = _rcpt(fold, rid)
    rcpt["address"] = _none(f[1])
    if f[2]:
        _set_status(rcpt, "rejected", ts)
        rcpt["response"] = f[3] or "Rejected by RAT"
    if fold.icid is None:
        fold.icid = _int(f[4])


def _on_message_id(fold: _Fold, ts: int | None, f: list[str]) -> None:
    fold.message_id = f[0]


def _on_subject(fold: _Fold, ts: int | None, f: list[str]) -> None:
    fold.subject = f[0]


def _on_ready(fold: _Fold, ts: int | None, f: list[str]) -> None:
    fold.size = _int(f[0])
    fold.ready_sender = f[1] if len(f) > 1 else None


def _on_policy(fold: _Fold, ts: int | None, f: list[str]) -> None:
    fold.policy = fold.policy or _none(f[0])
    direction = f[1].lower()
    if direction in ("inbound", "outbound"):
        fold.direction = direction
    fold.policies.append((f[0], f[2]))


def _on_interim(fold: _Fold, ts: int | None, f: list[str]) -> None:
    _verdict(fold, fc.M_INTERIM, f)


def _on_verdict(fold: _Fold, ts: int | None, f: list[str]) -> None:
    _verdict(fold, fc.M_VERDICT, f)


def _on_attachment(fold: _Fold, ts: int | None, f: list[str]) -> None:
    if f[0] not in fold.attachments:
        fold.attachments.append(f[0])


def _on_quarantine(fold: _Fold, ts: int | None, f: list[str]) -> None:
    name = f[0]
    low = name.lower()
    if not any(q["released_at"] is None and q["name"].lower() == low
               for q in fold.quarantines):  # ISQ tagging, then RPC delivery: one stay
        fold.quarantines.append({"name": name, "entered_at": ts, "released_at": None})
    fold.tags.add("outbreak_quarantine" if low.startswith("outbreak") else
                  "spam_quarantine" if "spam" in low else "policy_quarantine")
    for rcpt in fold.rcpts.values():
        if rcpt["status"] in ("pending", "soft_bounced"):
            _set_status(rcpt, "quarantined", ts)


def _on_release(fold: _Fold, ts: int | None, f: list[str]) -> None:
    _release(fold, f[0], ts)


def _on_child(code: str) -> _FoldStep:
    def step(fold: _Fold, ts: int | None, f: list[str]) -> None:
        child = _int(f[0])
        if child is not None:
            fold.children.append((code, child, f[1]))
    return step


def _on_parent(code: str) -> _FoldStep:
    def step(fold: _Fold, ts: int | None, f: list[str]) -> None:
        if fold.parent is None:
            fold.parent = _int(f[0])
            fold.parent_kind = "bounce" if code == fc.M_GEN_FROM and f[2] else code
    return step


def _on_dlv_start(fold: _Fold, ts: int | None, f: list[str]) -> None:
    dcid = _int(f[0])
    for rid in _rids(fold, f[1]):
        rcpt = _rcpt(fold, rid)
        rcpt["dcid"] = dcid
        if rcpt["status"] == "quarantined":
            _set_status(rcpt, "pending", ts)
    if dcid is not None:
        fold.dcids.add(dcid)


def _on_attempt_failed(code: str) -> _FoldStep:
    status = "soft_bounced" if code == fc.M_DELAYED else "hard_bounced"

    def step(fold: _Fold, ts: int | None, f: list[str]) -> None:
        dcid = _int(f[0])
        response = " - ".join(p for p in (f[2], f[3], f[4]) if p)
        for rid in _rids(fold, f[1]):
            rcpt = _rcpt(fold, rid)
            if dcid is not None:
                rcpt["dcid"] = dcid
            _set_status(rcpt, status, ts)
            rcpt["response"] = response or None
        if dcid is not None:
            fold.dcids.add(dcid)
        fold.tags.add(status)
    return step


def _on_pending(fold: _Fold, ts: int | None, f: list[str]) -> None:
    for rid in _rids(fold, f[0]):
        rcpt = _rcpt(fold, rid)
        if rcpt["status"] not in _FINAL_RCPT:
            _set_status(rcpt, "soft_bounced", ts)
    fold.tags.add("soft_bounced")


def _on_done(fold: _Fold, ts: int | None, f: list[str]) -> None:
    dcid = _int(f[0])
    external = bool(f[2])
    for rid in _rids(fold, f[1]):
        rcpt = _rcpt(fold, rid)
        if dcid is not None:
            rcpt["dcid"] = dcid
        _set_status(rcpt, "quarantined" if external else "delivered", ts)
        rcpt["response"] = None  # an earlier attempt's answer; the Response line follows
    if dcid is not None:
        fold.dcids.add(dcid)
    fold.tags.add("spam_quarantine" if external else "delivered")


def _on_response(fold: _Fold, ts: int | None, f: list[str]) -> None:
    for rid in _rids(fold, f[0]):
        _rcpt(fold, rid)["response"] = _none(f[1])


def _on_bounce_log(fold: _Fold, ts: int | None, f: list[str]) -> None:
    rid = _int(f[0])
    if rid is None:
        return
    rcpt = _rcpt(fold, rid)
    if rcpt["address"] is None:
        rcpt["address"] = _none(f[1])
    status = "soft_bounced" if f[5] else "hard_bounced"
    if not (status == "soft_bounced" and rcpt["status"] in _FINAL_RCPT):
        _set_status(rcpt, status, ts)
    rcpt["response"] = " - ".join(p for p in (f[2], f[3]) if p) or None
    if f[4]:
        fold.ready_sender = fold.ready_sender or f[4]
    fold.tags.add(status)


def _on_aborted(fold: _Fold, ts: int | None, f: list[str]) -> None:
    fold.aborted = f[0] or "aborted"
    status = "dropped" if "drop" in fold.aborted.lower() else "aborted"
    for rcpt in fold.rcpts.values():
        if rcpt["status"] not in _FINAL_RCPT:
            _set_status(rcpt, status, ts)
    fold.tags.add(status)


def _on_finished(fold: _Fold, ts: int | None, f: list[str]) -> None:
    fold.finished = ts  # the last one: a message finished in a quarantine finishes again
    fold.finished_outcome = f[0] or "done"
    if fold.finished_outcome == "aborted":
        for rcpt in fold.rcpts.values():
            if rcpt["status"] not in _FINAL_RCPT:
                _set_status(rcpt, "aborted", ts)
        fold.tags.add("aborted")


_CEF_VERDICTS: Final = (("antispam", 10), ("antivirus", 11), ("amp", 12), ("graymail", 13),
                        ("outbreak", 14), ("dlp", 15), ("dkim", 17), ("dmarc", 18))
_CEF_STATUS: Final = {"DELIVERED": "delivered", "BOUNCED": "hard_bounced",
                      "QUARANTINED": "quarantined", "DQ": "quarantined", "ABORTED": "aborted",
                      "DROPPED": "dropped"}
_CEF_SPF: Final = re.compile(r"'mailfrom':\s*\{'result':\s*'([^']*)'")


def _cef_word(text: str) -> str | None:
    word = text.strip().lower()
    return None if word in ("", "not_evaluated", "n/a") else word


def _on_cef(fold: _Fold, ts: int | None, f: list[str]) -> None:
    """A consolidated line fills what the text log lines did not say (they win when present):
    the whole message at once, finished."""
    fold.icid = fold.icid if fold.icid is not None else _int(f[0])
    fold.sender = fold.sender if fold.sender is not None else f[1]
    if not fold.rcpts:
        for rid, address in enumerate(a.strip() for a in re.split(r"[;,]", f[2]) if a.strip()):
            _rcpt(fold, rid)["address"] = address
    fold.message_id = fold.message_id if fold.message_id is not None else _unquote(f[3]) or None
    fold.subject = fold.subject if fold.subject is not None else _unquote(f[4])
    fold.size = fold.size if fold.size is not None else _int(f[5])
    fold.policy = fold.policy or _none(f[6])
    fold.direction = fold.direction or {"0": "inbound", "1": "outbound"}.get(f[7])
    for engine, pos in _CEF_VERDICTS:
        if fold.verdicts[engine] is None:
            fold.verdicts[engine] = _cef_word(f[pos])
    spf = _CEF_SPF.search(f[16])
    if fold.verdicts["spf"] is None and spf:
        fold.verdicts["spf"] = _cef_word(spf.group(1))
    fold.cef_client = {"ip": _none(f[19]), "rdns": _none(f[20]), "rdns_verified": None,
                       "sbrs": _float(f[21]), "sender_group": _none(f[22]),
                       "flow": _none(f[23]), "interface": None, "country": None, "tls": None}
    act = f[8].strip().upper()
    status = _CEF_STATUS.get(act)
    if status == "quarantined":
        name = f[9][3:] if f[9].startswith("To ") else (f[9] or "quarantine")
        _on_quarantine(fold, ts, [name, "", ""])
    elif status is not None:
        for rcpt in fold.rcpts.values():
            if rcpt["status"] not in _FINAL_RCPT:
                _set_status(rcpt, status, ts)
        if status != "aborted":
            fold.tags.add(status)
        else:
            fold.aborted = fold.aborted or f[9] or "aborted"
    if fold.finished_outcome is None:
        fold.finished, fold.finished_outcome = ts, "done"


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


_FOLD: Final[dict[str, _FoldStep]] = {
    fc.M_START: _on_start, fc.M_FROM: _on_from, fc.M_RCPT: _on_rcpt,
    fc.M_MSGID: _on_message_id, fc.M_SUBJECT: _on_subject, fc.M_READY: _on_ready,
    fc.M_POLICY: _on_policy, fc.M_INTERIM: _on_interim, fc.M_VERDICT: _on_verdict,
    fc.M_ATTACH: _on_attachment, fc.M_QUAR: _on_quarantine, fc.M_RELEASE: _on_release,
    **{code: _on_child(code) for code in fc.CHILD_CODES},
    **{code: _on_parent(code) for code in fc.PARENT_CODES},
    fc.M_DLV_START: _on_dlv_start, fc.M_DELAYED: _on_attempt_failed(fc.M_DELAYED),
    fc.M_BOUNCED: _on_attempt_failed(fc.M_BOUNCED), fc.M_PENDING: _on_pending,
    fc.M_DONE: _on_done, fc.M_RESPONSE: _on_response, fc.M_BOUNCE_LOG: _on_bounce_log,
    fc.M_ABORTED: _on_aborted, fc.M_FINISHED: _on_finished, fc.M_CEF: _on_cef,
}
"""Code -> how a fact of that code changes the fold (codes absent here only add an event)."""


def fold_message(mid: int, facts: list[fc.Fact],
                 inherited_rcpts: list[dict[str, Any]] | None = None) -> _Fold:
    """The message fields from its own facts, in order; ``inherited_rcpts`` seed the recipients
    of a child that logs none of its own."""
    fold = _Fold()
    if inherited_rcpts and not any(fact[3] == fc.M_RCPT for fact in facts):
        for rcpt in inherited_rcpts:
            _rcpt(fold, rcpt["rid"])["address"] = rcpt["address"]
    inherited_codes = fc.INHERITED_CODES
    kinds, texts, steps = _KIND_OF_CODE, _TEXT, _FOLD
    events_append, timed_append = fold.events.append, fold.timed.append
    last_ms: int | None = None
    last_iso: str | None = None
    for _t, _r, _x, code, ts, f in facts:
        if ts is not None:
            timed_append(ts)
        if ts != last_ms:
            last_ms, last_iso = ts, iso(ts)
        render = texts.get(code)
        events_append({"ts": last_iso, "kind": kinds.get(code, ev.MSG_INFO),
                       "text": f[0] if render is None else render(f, mid)})
        if code in inherited_codes:
            fold.inheritable += 1
        step = steps.get(code)
        if step is not None:
            step(fold, ts, f)
    if fold.sender is None:
        fold.sender = fold.ready_sender
    return fold


def _release(fold: _Fold, name: str, ts: int | None) -> None:
    low = name.lower()
    for entry in fold.quarantines:
        if entry["released_at"] is None and entry["name"].lower() == low:
            entry["released_at"] = ts
            break
    else:
        fold.quarantines.append({"name": name, "entered_at": None, "released_at": ts})
    if not any(q["released_at"] is None for q in fold.quarantines):
        for rcpt in fold.rcpts.values():
            if rcpt["status"] == "quarantined":
                _set_status(rcpt, "pending", ts)


def _status(fold: _Fold, rcpts: list[dict[str, Any]]) -> str:
    if fold.aborted is not None:
        return "dropped" if "drop" in fold.aborted.lower() else "aborted"
    if any(code == fc.M_REWRITE_TO for code, _c, _p in fold.children):
        return "rewritten"
    own = [r for r in rcpts if "moved_to" not in r]
    if not own:
        if fold.children and rcpts:
            return "rewritten"  # split: every recipient continued under another MID
        if fold.finished_outcome == "aborted":
            return "aborted"
        return "in_flight"
    statuses = {r["status"] for r in own}
    held = any(q["released_at"] is None for q in fold.quarantines)
    if "quarantined" in statuses and not statuses & {"pending", "soft_bounced"}:
        return "quarantined"
    if held and fold.finished_outcome is None:
        return "quarantined"
    if fold.finished_outcome is None or statuses & {"pending", "soft_bounced"}:
        return "in_flight"
    if statuses == {"delivered"}:
        return "delivered"
    if "delivered" in statuses:
        return "partially_delivered"
    if statuses <= {"hard_bounced", "rejected"}:
        return "bounced"
    if "dropped" in statuses:
        return "dropped"
    if "aborted" in statuses:
        return "aborted"
    return "bounced"


def _tags(fold: _Fold) -> list[str]:
    tags = {t for t in fold.tags if t in TAGS}
    v = fold.verdicts
    antispam = v["antispam"] or ""
    if antispam in ("positive", "spam") or antispam.startswith("positive"):
        tags.add("spam_positive")
    if antispam.startswith("suspect"):
        tags.add("suspect_spam")
    if (v["antivirus"] or "") in ("positive", "viral", "virus", "infected"):
        tags.add("virus_positive")
    if (v["graymail"] or "") not in _NEGATIVE:
        tags.add("graymail")
    dlp = v["dlp"] or ""
    if dlp.startswith("violat") or dlp in ("positive", "match", "matched"):
        tags.add("dlp_violation")
    return [t for t in TAGS if t in tags]


def _load(text: str | None) -> Any:
    return orjson.loads(text) if text else None


def _client_join(host: Host, s: MsgState, icid: int | None
                 ) -> tuple[dict[str, Any] | None, str | None, int]:
    """(client, auth user, contributing fact count): from the connection while it is open and
    names this MID (or this message has no snapshot yet), else from the snapshot."""
    conn = host.conns.get(icid) if icid is not None else None
    if conn is not None and (s.client is None or
                             f"{fc.SEP}{fc.C_MID}{fc.FS}{s.ident}{fc.SEP}" in conn.text()):
        folded = _folded_client(conn)
        if folded is not None:
            return unfold_client_text(folded)
    snap = _load(s.client)
    if snap:
        return snap[0], snap[1], int(snap[2])
    return None, None, 0


def _folded_client(conn: ConnState) -> str | None:
    """The client of a connection as compact text, folded once per change of its facts."""
    if conn.folded_n != conn.n:
        facts = [f for f in fc.decode(conn.text(), conn.base, fc.CONN_RANK)
                 if f[3] in fc.CLIENT_CODES]
        conn.folded, conn.folded_n = fold_client_text(*fold_client(facts)), conn.n
    return conn.folded


def fold_client_text(client: dict[str, Any], auth_user: str | None, used: int) -> str | None:
    """A folded client as a connection keeps it for its messages (``None`` when no fact made
    it): its values in ``CLIENT_KEYS`` order, the auth user and the count, ``FS``-separated.
    No value is ``""`` (absent ones are ``None``) and none holds a separator (they come from
    facts), so the text means exactly the client (a float's repr reads back the same)."""
    if not used:
        return None
    verified = client["rdns_verified"]
    sbrs = client["sbrs"]
    return fc.FS.join((
        client["ip"] or "", client["rdns"] or "",
        "" if verified is None else ("1" if verified else "0"),
        "" if sbrs is None else repr(sbrs), client["sender_group"] or "",
        client["flow"] or "", client["interface"] or "", client["country"] or "",
        client["tls"] or "", auth_user or "", str(used)))


def unfold_client_text(text: str) -> tuple[dict[str, Any], str | None, int]:
    """The inverse of :func:`fold_client_text`: (client, auth user, count), a new dict."""
    f = text.split(fc.FS)
    verified = f[2]
    sbrs = f[3]
    client: dict[str, Any] = {
        "ip": f[0] or None, "rdns": f[1] or None,
        "rdns_verified": True if verified == "1" else (False if verified == "0" else None),
        "sbrs": float(sbrs) if sbrs else None, "sender_group": f[4] or None,
        "flow": f[5] or None, "interface": f[6] or None, "country": f[7] or None,
        "tls": f[8] or None,
    }
    return client, f[9] or None, int(f[10])


def snapshot_client(conn: ConnState) -> str | None:
    """The client of a connection as the snapshot its messages keep once it is gone (JSON
    ``[client, auth user, contributing fact count]``), or None when its facts give none."""
    folded = _folded_client(conn)
    if folded is None:
        return None
    return orjson.dumps(list(unfold_client_text(folded))).decode()


def _parent_of(facts: list[fc.Fact]) -> tuple[int | None, str | None]:
    """(parent MID, how it was derived: a PARENT_CODES code, or "bounce")."""
    for _t, _r, _x, code, _ts, f in facts:
        if code in fc.PARENT_CODES:
            kind = "bounce" if code == fc.M_GEN_FROM and f[2] else code
            return _int(f[0]), kind
    return None, None


def _inherit(host: Host, s: MsgState, parent_mid: int, kind: str | None, *, depth: int,
             own: bool) -> tuple[Record | None, int]:
    """(what the child inherits from its parent, contributing count)."""
    ext = _load(s.ext) or {}
    parent, kept = host.peek(parent_mid)
    if parent is not None and parent is not s and depth < _MAX_LINEAGE_DEPTH:
        frozen = kept and isinstance(parent.blob, bytes)
        prec, _rev, count = _build(host, parent, depth + 1)
        if frozen:
            parent.freeze()  # read for its child's sake: leave it as it was
        if kind == "bounce":
            inherited: Record = {"sender": "", "recipients": (
                [{"rid": 0, "address": prec["sender"]}] if prec.get("sender") else [])}
        else:
            rcpts = prec["recipients"]
            if kind == fc.M_SPLIT_FROM:
                rcpts = [r for r in rcpts if r.get("moved_to") == s.ident] or rcpts
            inherited = {
                "sender": prec["sender"],
                "recipients": [{"rid": r["rid"], "address": r["address"]} for r in rcpts],
                "message_id": prec["message_id"], "subject": prec["subject"],
                "size": prec["size"], "attachments": prec["attachments"],
                "direction": prec["direction"], "policy": prec["policy"], "icid": prec["icid"],
                "client": prec["client"], "auth_user": prec["auth_user"],
            }
        if own and ext.get("p") != [inherited, count]:
            ext["p"] = [inherited, count]
            s.ext = orjson.dumps(ext).decode()
        return inherited, count
    snap = ext.get("p")
    if snap:
        return snap[0], int(snap[1])
    return None, 0


def delivery_address(host: Host, dcid: int) -> str | None:
    """The remote address of a delivery connection, from its ``New SMTP DCID`` line (None
    while that line is not in, or the connection is gone)."""
    dlv = host.dlvs.get(dcid)
    if dlv is None:
        return None
    address = None
    for fields in fc.codes_in(dlv.text(), fc.D_NEW):
        address = fields[1] or address
    return address


def kept_addresses(s: MsgState) -> dict[str, str]:
    """DCID (as text) -> the remote address a message kept of each delivery connection it used
    (its snapshot, for when the connection is gone)."""
    known: dict[str, str] = (_load(s.ext) or {}).get("d") or {}
    return known


def _remote_ips(host: Host, s: MsgState, dcids: set[int], own: bool
                ) -> tuple[dict[int, str], int]:
    """DCID -> remote address of the delivery connections this message used."""
    ext = _load(s.ext) or {}
    known: dict[str, Any] = ext.get("d") or {}
    changed = False
    for dcid in dcids:
        ip = delivery_address(host, dcid)
        if ip and known.get(str(dcid)) != ip:
            known[str(dcid)] = ip
            changed = True
    if changed and own:
        ext["d"] = known
        s.ext = orjson.dumps(ext).decode()
    ips = {int(k): v for k, v in known.items() if int(k) in dcids}
    return ips, len(ips)


def message_record(host: Host, s: MsgState) -> tuple[Record, int]:
    """The message record of ``s`` and its revision."""
    record, revision, _count = _build(host, s, 0)
    return record, revision


def _build(host: Host, s: MsgState, depth: int) -> tuple[Record, int, int]:
    """(record, revision, what a child inheriting from it counts). Only the record being
    emitted (depth 0) updates its own snapshots and freezes its id; a parent built for its
    child's sake is left untouched."""
    own = depth == 0
    facts = fc.decode(s.text(), s.base, fc.MSG_RANK)
    inherited: Record | None = None
    inherited_count = 0
    if s.flags & PARENT:
        parent_mid, kind = _parent_of(facts)
        if parent_mid is not None:
            inherited, inherited_count = _inherit(host, s, parent_mid, kind, depth=depth,
                                                  own=own)
    fold = fold_message(s.ident, facts, inherited["recipients"] if inherited else None)
    icid = fold.icid
    if icid is None and inherited is not None:
        icid = inherited.get("icid")
    # A child joins a connection only by an ICID of its own: the parent's client comes with
    # what it inherits (and is counted there), so the revision cannot fall when the child's
    # own ICID line (often "ICID 0") arrives after a record was emitted.
    joined = fold.icid if s.flags & PARENT else icid
    client, auth_user, client_count = _client_join(host, s, joined)
    if client is None and inherited is not None and inherited.get("client"):
        client, auth_user = inherited["client"], inherited.get("auth_user")
    if client is None and fold.cef_client is not None:
        client = fold.cef_client
    ips, ip_count = _remote_ips(host, s, fold.dcids, own) if fold.dcids else ({}, 0)

    # Split: recipients matched by the policy a child was split off for went to that child.
    for code, child, policy in fold.children:
        if code != fc.M_SPLIT_TO:
            continue
        for name, rids in fold.policies:
            if name == policy and rids:
                for rid in fc.rid_list(rids):
                    if rid in fold.rcpts:
                        fold.rcpts[rid]["moved_to"] = child
    rcpts = [fold.rcpts[rid] for rid in sorted(fold.rcpts)]
    for rcpt in rcpts:
        rcpt["updated_at"] = iso(rcpt["updated_at"])
        dcid = rcpt["dcid"]
        if dcid is not None and dcid in ips:
            rcpt["remote_ip"] = ips[dcid]

    def pick(key: str, own: Any) -> Any:
        if own is not None or inherited is None:
            return own
        return inherited.get(key)

    started = fold.started if fold.started is not None else (
        fold.timed[0] if fold.timed else None)
    start_key = _frozen_start(s, started, own)
    expired = bool(s.flags & EXPIRED)
    sender = pick("sender", fold.sender)
    direction = pick("direction", fold.direction)
    if direction is None and client is not None and client.get("flow") in ("RELAY", "ACCEPT"):
        direction = "outbound" if client["flow"] == "RELAY" else "inbound"
    attachments = fold.attachments or (inherited or {}).get("attachments") or []
    revision = s.n + client_count + inherited_count + ip_count + (1 if expired else 0)
    record: Record = {
        "type": "message",
        "id": record_id("m", host.name, s.ident, start_key),
        "host": host.name,
        "mid": s.ident,
        "icid": icid,
        "revision": revision,
        "started_at": iso(started),
        "finished_at": iso(fold.finished),
        "updated_at": iso(fold.timed[-1] if fold.timed else None),
        "complete": fold.finished_outcome is not None,
        "expired": expired,
        "status": _status(fold, rcpts),
        "sender": sender,
        "recipients": rcpts,
        "message_id": pick("message_id", fold.message_id),
        "subject": pick("subject", fold.subject),
        "size": pick("size", fold.size),
        "attachments": [{"name": name} for name in attachments]
        if attachments and isinstance(attachments[0], str) else list(attachments),
        "direction": direction,
        "policy": pick("policy", fold.policy),
        "client": client if client is not None else empty_client(),
        "auth_user": auth_user,
        "verdicts": fold.verdicts,
        "quarantines": [{"name": q["name"], "entered_at": iso(q["entered_at"]),
                         "released_at": iso(q["released_at"])} for q in fold.quarantines],
        "tags": _tags(fold),
        "parent_mid": fold.parent,
        "child_mids": sorted({child for _code, child, _p in fold.children}),
        "events": fold.events,
    }
    count = fold.inheritable + client_count + inherited_count
    return record, revision, count
