"""The event model: what the parser produces and the correlator consumes.

One raw log line becomes exactly one :class:`Event`. Its ``kind`` says which line shape it was;
the identifiers that join events (ICID, MID, DCID) are top-level attributes so the correlator can
route without looking into ``data``; everything else specific to the kind is in ``data`` under
the names listed in :data:`KIND_FIELDS`. A line that could not be understood is an event of kind
``unknown`` with ``data["reason"]``: it is never an exception.

Times are epoch seconds in UTC (``float``), or ``None`` when the framing carried no usable time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

# ---------------------------------------------------------------------------------------------
# Kinds. Names are stable: they appear in the ``kinds`` counters of ``esatrack parse --stats``,
# in the dead-letter topic and in the tests.
# ---------------------------------------------------------------------------------------------

# Incoming connection (ICID)
CONN_NEW: Final = "conn_new"
CONN_POLICY: Final = "conn_policy"
CONN_TLS: Final = "conn_tls"
CONN_AUTH: Final = "conn_auth"
CONN_CLOSE: Final = "conn_close"
CONN_INFO: Final = "conn_info"

# Message (MID)
MSG_START: Final = "msg_start"
MSG_FROM: Final = "msg_from"
MSG_RCPT: Final = "msg_rcpt"
MSG_MESSAGE_ID: Final = "msg_message_id"
MSG_SUBJECT: Final = "msg_subject"
MSG_READY: Final = "msg_ready"
MSG_POLICY: Final = "msg_policy"
MSG_VERDICT: Final = "msg_verdict"
MSG_ATTACHMENT: Final = "msg_attachment"
MSG_URL: Final = "msg_url"
MSG_CUSTOM: Final = "msg_custom"
MSG_QUARANTINE: Final = "msg_quarantine"
MSG_RELEASE: Final = "msg_release"
MSG_REWRITE: Final = "msg_rewrite"
MSG_SPLIT: Final = "msg_split"
MSG_GENERATED: Final = "msg_generated"
MSG_QUEUED: Final = "msg_queued"
MSG_ABORTED: Final = "msg_aborted"
MSG_FINISHED: Final = "msg_finished"
MSG_INFO: Final = "msg_info"

# Delivery (DCID)
DLV_NEW: Final = "dlv_new"
DLV_TLS: Final = "dlv_tls"
DLV_START: Final = "dlv_start"
DLV_DONE: Final = "dlv_done"
DLV_RESPONSE: Final = "dlv_response"
DLV_BOUNCED: Final = "dlv_bounced"
DLV_DELAYED: Final = "dlv_delayed"
DLV_PENDING: Final = "dlv_pending"
DLV_CLOSE: Final = "dlv_close"
DLV_ERROR: Final = "dlv_error"
DLV_INFO: Final = "dlv_info"

# Other sources
BOUNCE_LOG: Final = "bounce_log"
CEF: Final = "cef"
STATUS: Final = "status"
SYSTEM: Final = "system"
UNKNOWN: Final = "unknown"

KIND_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    # ``New SMTP ICID 5 interface Data 1 (10.1.1.1) address 192.0.2.9 reverse dns host mx
    # verified yes``
    CONN_NEW: ("interface", "interface_ip", "ip", "rdns", "rdns_verified"),
    # ``ICID 5 ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS 3.4 country Thailand``;
    # action is upper case (ACCEPT, RELAY, REJECT, TCPREFUSE, CONTINUE); sbrs float or None.
    # ``ICID 5 Delayed HAT REJECT continuing session ...``: delayed True, detail the text.
    CONN_POLICY: ("action", "sender_group", "match", "sbrs", "country", "delayed", "detail"),
    # ``ICID 5 TLS success protocol TLSv1.2 cipher ...`` / ``ICID 5 TLS failed: reason``
    CONN_TLS: ("success", "protocol", "cipher", "error"),
    # ``SMTP Auth: (ICID 5) succeeded for user: jdoe using AUTH mechanism: LOGIN with
    # profile: corp``
    CONN_AUTH: ("success", "user", "mechanism", "profile"),
    # ``ICID 5 close`` / ``ICID 5 lost``
    CONN_CLOSE: ("lost",),
    # any other line about an ICID (``ICID 5 Receiving Failed: ...``, SMTP Auth errors): text
    CONN_INFO: ("text",),
    # ``Start MID 6 ICID 5`` (icid top-level)
    MSG_START: (),
    # ``MID 6 ICID 5 From: <a@example.com>``; sender without brackets, "" for <>
    MSG_FROM: ("sender",),
    # ``MID 6 ICID 5 RID 0 To: <b@example.org>`` [``Rejected by RAT``]
    MSG_RCPT: ("rid", "address", "rejected", "reason"),
    # ``MID 6 Message-ID '<abc@example.com>'``: value without the surrounding quotes
    MSG_MESSAGE_ID: ("message_id",),
    # ``MID 6 Subject 'Hello'``: in any quoting, value unquoted
    MSG_SUBJECT: ("subject",),
    # ``MID 6 ready 4306 bytes from <a@example.com>``
    MSG_READY: ("size", "sender"),
    # ``MID 6 matched all recipients for per-recipient policy DEFAULT in the inbound table``;
    # rids None for "all recipients", else the listed RIDs
    MSG_POLICY: ("policy", "direction", "rids"),
    # engine: antispam|antivirus|amp|graymail|outbreak|dlp|spf|dkim|dmarc|sdr|...; verdict lower
    # case as logged (positive, negative, suspect, clean, viral, malware, pass, fail, ...);
    # interim: True for interim verdicts; detail: the rest (virus name, DLP policy, identity);
    # DLP violations add severity (LOW ...) and risk_factor (int)
    MSG_VERDICT: ("engine", "verdict", "interim", "detail", "virus_name", "severity",
                  "risk_factor"),
    MSG_ATTACHMENT: ("name",),
    MSG_URL: ("url", "detail"),
    MSG_CUSTOM: ("text",),
    # name: quarantine name ("Policy", "Outbreak", "Virus", "spam" for ISQ/RPC delivery to the
    # spam quarantine); via: content filter / rule text; central: bool; rcid for RPC delivery
    MSG_QUARANTINE: ("name", "via", "central", "rcid"),
    # ``MID 6 released from quarantine "Outbreak" (expired)``
    MSG_RELEASE: ("name", "reason"),
    # ``MID 6 rewritten to MID 7 by LDAP rewrite``: mid is the old one
    MSG_REWRITE: ("new_mid", "reason"),
    # ``MID 6 was split creating MID 8 due to a per-recipient policy X in the inbound table``
    MSG_SPLIT: ("new_mid", "policy", "direction"),
    # ``MID 9 was generated based on MID 6 by bcc filter 'copy'`` and
    # ``MID 10 was generated for bounce of MID 6``: mid is the new one, parent_mid the origin;
    # reason: "bounce" for bounce messages, else the logged cause
    MSG_GENERATED: ("parent_mid", "reason", "bounce"),
    MSG_QUEUED: (),
    # ``Message aborted MID 6 Dropped by antivirus``
    MSG_ABORTED: ("reason",),
    # ``Message finished MID 6 done|aborted``
    MSG_FINISHED: ("outcome",),
    # any other line about a MID that the tracking timeline should still show (data: text)
    MSG_INFO: ("text",),
    # ``New SMTP DCID 8 interface 10.1.1.2 address 198.51.100.25 port 25``
    DLV_NEW: ("interface", "ip", "port"),
    # domain: ``... cipher AES128-SHA for example.com`` (delivery TLS names the domain)
    DLV_TLS: ("success", "protocol", "cipher", "error", "domain"),
    # ``Delivery start DCID 8 MID 6 to RID [0, 1]``
    DLV_START: ("rids",),
    # ``Message done DCID 8 MID 6 to RID [0] [headers...]``; headers: list of [name, value]
    DLV_DONE: ("rids", "headers", "external_quarantine"),
    # ``MID 6 RID [0] Response '2.0.0 Ok: queued as 4XyZ'``
    DLV_RESPONSE: ("rids", "response"),
    # ``Bounced: DCID 8 MID 6 to RID 1 - 5.1.0 - Unknown address error ('550', [...]) []``
    # response: the SMTP reply tuple as logged; sender/recipient when the line names them
    # (``Bounced: DCID 2 MID 5 From:<a> To:<b> RID 0 - ...``); dcid may be None
    DLV_BOUNCED: ("rids", "code", "reason", "response", "sender", "recipient"),
    # ``Delayed: DCID 8 MID 6 to RID 0 - 4.1.0 - ...``
    DLV_DELAYED: ("rids", "code", "reason", "response", "sender", "recipient"),
    # ``Message 6 to RID [0] pending till Mon Mar 31 20:01:23 2003``; until: text as logged
    DLV_PENDING: ("rids", "until"),
    DLV_CLOSE: (),
    # ``Connection Error: DCID 63 domain: x IP: 192.0.2.5 port: 25 details: ... reason: ...``
    # text: everything after the DCID; ip, port (int), details, interface, reason when logged
    DLV_ERROR: ("text", "domain", "ip", "port", "details", "interface", "reason"),
    # any other line about a DCID: text
    DLV_INFO: ("text",),
    # ``Bounced: 45346670:0 From:<a@x> To:<b@y> Reason: "5.1.0 - ..." Response: "..."``
    # (also ``Delayed: 44451135:0 ...``: delayed True); mid top-level
    BOUNCE_LOG: ("rid", "sender", "recipient", "reason", "response", "delayed"),
    # Consolidated Event Log: vendor, product, version, signature, name, severity, ext (dict)
    CEF: ("vendor", "product", "version", "signature", "name", "severity", "ext"),
    # ``Status: CPULd 3 DskIO 0 RAMUtil 11 ...``: metrics: dict name -> number
    STATUS: ("metrics",),
    # appliance noise without a MID, recognised and kept: data["text"]; the file headers add
    # ``Version: 15.0.0-104 SN: 42..`` -> version, serial; ``Time offset from UTC: -21600
    # seconds`` -> utc_offset (int seconds east of UTC)
    SYSTEM: ("text", "version", "serial", "utc_offset"),
    # ``reason`` says why; the raw line is in ``body`` (and ``raw`` when decoding was lossy)
    UNKNOWN: ("reason",),
}
"""The ``data`` keys each kind may carry (absent keys mean "not logged")."""


@dataclass(slots=True)
class Event:
    """One parsed log line."""

    kind: str
    """One of the kind constants above."""
    ts: float | None
    """Epoch seconds, UTC."""
    host: str | None
    """The appliance the line came from (syslog host, or configuration)."""
    body: str
    """The line's text after the framing (syslog header, time, level); the whole line for
    ``unknown`` events whose framing could not be read."""
    tag: str | None = None
    """The syslog tag: the appliance's log subscription name (``mail_logs``, ...)."""
    level: str | None = None
    """``Info``, ``Warning``, ``Debug``, ``Trace``, ``Critical``."""
    icid: int | None = None
    mid: int | None = None
    dcid: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    raw: bytes | None = None
    """The raw bytes, kept only when they did not decode as UTF-8 (``body`` then holds the
    decode with replacement characters)."""
    truncated: bool = False
    """True when the line was longer than the configured cap and was cut."""
