"""The details view of one message (the SMA "Message Details" page), rendered from records.

Pure: given the message record and the records of its lineage (parent and child MIDs on the same
appliance: rewritten, split, bounce messages), it returns the text. Fetching is in ``show.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from streams.search.output import Record, format_time, last_state, to_datetime

_LABEL_WIDTH: Final = 22


def related_mids(record: Record) -> set[int]:
    """The MIDs one hop away in the lineage of ``record`` (its parent and its children)."""
    mids: set[int] = set()
    parent = record.get("parent_mid")
    if parent is not None:
        mids.add(int(parent))
    mids.update(int(child) for child in record.get("child_mids") or [])
    return mids


def merged_timeline(records: Iterable[Record]) -> list[tuple[Any, int | None, str]]:
    """All events of ``records`` as ``(ts, mid, text)``, in time order (stable for equal times,
    records in the order given)."""
    lines: list[tuple[Any, int | None, str]] = []
    for record in records:
        mid = record.get("mid")
        for event in record.get("events") or []:
            lines.append((event.get("ts"), None if mid is None else int(mid),
                          str(event.get("text") or event.get("kind") or "")))
    order = {id(line): pos for pos, line in enumerate(lines)}
    return sorted(lines, key=lambda line: (_sort_key(line[0]), order[id(line)]))


def render_details(root: Record, lineage: Sequence[Record] = ()) -> str:
    """The details text of ``root``; ``lineage`` are the other records of its MID family."""
    out: list[str] = []
    family = [root, *[r for r in lineage if r.get("id") != root.get("id")]]
    family.sort(key=lambda r: _sort_key(r.get("started_at")))

    out.append("Envelope and Header Summary")
    out.append(_line("Received Time", format_time(root.get("started_at")) + " UTC"))
    out.append(_line("Host", _na(root.get("host"))))
    out.append(_line("MID", _na(root.get("mid"))))
    out.append(_line("ICID", _na(root.get("icid"))))
    size = root.get("size")
    out.append(_line("Message Size", "N/A" if size is None else f"{size} bytes"))
    subject = root.get("subject")
    out.append(_line("Subject", "(no subject)" if not subject else str(subject)))
    out.append(_line("Sender", _na(root.get("sender"))))
    recipients = root.get("recipients") or []
    out.append(_line("Recipients", "" if recipients else "N/A"))
    for rcpt in recipients:
        out.append("  " + _recipient(rcpt))
    out.append(_line("Message ID Header", _na(root.get("message_id"))))
    out.append(_line("SMTP Auth User ID", _na(root.get("auth_user"))))
    if root.get("direction"):
        out.append(_line("Direction", str(root["direction"])))
    out.append(_line("Last State", last_state(root)))
    if not root.get("complete", True):
        out.append(_line("Note", "record incomplete (some log lines not seen yet)"))

    client = root.get("client") or {}
    out.append("")
    out.append("Sending Host")
    rdns = client.get("rdns")
    verified = client.get("rdns_verified")
    suffix = "" if verified is None else (" (verified)" if verified else " (not verified)")
    out.append(_line("Reverse DNS Hostname", ("N/A" if not rdns else str(rdns)) + suffix))
    out.append(_line("IP Address", _na(client.get("ip"))))
    out.append(_line("SBRS Score", _na(client.get("sbrs"))))

    if len(family) > 1 or root.get("parent_mid") is not None or root.get("child_mids"):
        out.append("")
        out.append("Related Messages")
        for record in family:
            marker = "*" if record is root else " "
            out.append(
                f" {marker}MID {record.get('mid')}  {format_time(record.get('started_at'))}  "
                f"{last_state(record)}{_relation(record, root)}"
            )
        missing = related_mids(root) - {int(r["mid"]) for r in family if r.get("mid") is not None}
        for lost in sorted(missing):
            out.append(f"  MID {lost}  (no record found)")

    out.append("")
    out.append("Processing Details")
    timeline = merged_timeline(family)
    if not timeline:
        out.append("  (no events recorded)")
    for ts, mid, text in timeline:
        out.append(f"  {format_time(ts):19}  [MID {mid}]  {text}")
    return "\n".join(out) + "\n"


def _relation(record: Record, root: Record) -> str:
    if record is root:
        return ""
    mid = record.get("mid")
    if mid is not None and root.get("parent_mid") is not None and int(mid) == int(
        root["parent_mid"]
    ):
        return "  (parent)"
    if mid is not None and int(mid) in {int(c) for c in root.get("child_mids") or []}:
        return "  (child)"
    return ""


def _recipient(rcpt: Mapping[str, Any]) -> str:
    parts = [str(rcpt.get("address") or "N/A"), str(rcpt.get("status") or "unknown")]
    if rcpt.get("response"):
        parts.append(f"Response: {rcpt['response']!s}")
    if rcpt.get("updated_at") is not None:
        parts.append(f"at {format_time(rcpt['updated_at'])}")
    return "  ".join(parts)


def _line(label: str, value: str) -> str:
    return f"  {label + ':':{_LABEL_WIDTH}} {value}".rstrip()


def _na(value: Any) -> str:
    return "N/A" if value is None or value == "" else str(value)


def _sort_key(value: Any) -> float:
    moment = to_datetime(value)
    return float("inf") if moment is None else moment.timestamp()
