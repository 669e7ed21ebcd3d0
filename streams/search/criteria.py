"""The tracking criteria of the SMA message-tracking screen, as one frozen value.

Everything here is pure: parsing a time bound ("24h", "2024-03-17T10:00") or a text operator
gives a value or raises :class:`SearchInputError` saying what form is expected.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from streams.errors import EsatrackError


class SearchInputError(EsatrackError):
    """A search criterion has the wrong form; the message shows the expected one."""


class Op(StrEnum):
    """How a text criterion matches (the SMA drop-down)."""

    IS = "is"
    BEGINS = "begins"
    CONTAINS = "contains"
    EMPTY = "empty"


@dataclass(frozen=True)
class TextMatch:
    """A text criterion: operator and value (no value for ``empty``)."""

    op: Op
    value: str = ""


class Event(StrEnum):
    """Message events of the tracking screen; several are OR-ed. Values are record tags."""

    VIRUS_POSITIVE = "virus_positive"
    SPAM_POSITIVE = "spam_positive"
    SUSPECT_SPAM = "suspect_spam"
    GRAYMAIL = "graymail"
    DELIVERED = "delivered"
    HARD_BOUNCED = "hard_bounced"
    SOFT_BOUNCED = "soft_bounced"
    OUTBREAK_QUARANTINE = "outbreak_quarantine"
    SPAM_QUARANTINE = "spam_quarantine"
    POLICY_QUARANTINE = "policy_quarantine"
    DLP_VIOLATION = "dlp_violation"
    DROPPED = "dropped"
    ABORTED = "aborted"


class Direction(StrEnum):
    """Mail direction as the record stores it."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True)
class Criteria:
    """What to search for. ``None``/empty means "any". Time bounds are UTC, end exclusive."""

    sender: TextMatch | None = None
    recipient: TextMatch | None = None
    subject: TextMatch | None = None
    start: datetime | None = None
    end: datetime | None = None
    sender_ip: str | None = None
    rejected_only: bool = False
    message_id: str | None = None
    mid: int | None = None
    hosts: tuple[str, ...] = ()
    attachment: str | None = None
    direction: Direction | None = None
    events: tuple[Event, ...] = ()

    def __post_init__(self) -> None:
        for name in ("sender", "recipient", "subject"):
            match: TextMatch | None = getattr(self, name)
            if match is None:
                continue
            if match.op is Op.EMPTY and name != "subject":
                raise SearchInputError(f"--{name} cannot be 'empty'; only the subject can")
            if match.op is not Op.EMPTY and not match.value:
                raise SearchInputError(f"--{name} {match.op} needs a value")
        if self.start and self.end and self.start >= self.end:
            raise SearchInputError(
                f"--from ({self.start.isoformat()}) must be before --to ({self.end.isoformat()})"
            )
        if self.sender_ip is not None:
            parse_ip(self.sender_ip)
        if self.rejected_only:
            used = [flag for flag, value in self._message_only().items() if value]
            if used:
                raise SearchInputError(
                    "--rejected-only searches connection records, which have no "
                    + ", ".join(used)
                    + "; drop those options or drop --rejected-only"
                )

    def _message_only(self) -> dict[str, object]:
        return {
            "--sender": self.sender, "--recipient": self.recipient, "--subject": self.subject,
            "--message-id": self.message_id, "--mid": self.mid,
            "--attachment": self.attachment, "--direction": self.direction,
            "--event": self.events,
        }


_RELATIVE: Final = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, now: datetime) -> datetime:
    """A time bound: ``now``, relative (``90m``, ``24h``, ``7d``: that long before ``now``) or
    ISO 8601 (a date, or a date-time; without a zone it is UTC). Returns an aware UTC time."""
    value = text.strip().lower()
    if value == "now":
        return now.astimezone(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return (now - timedelta(**{_UNITS[unit]: amount})).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SearchInputError(
            f"cannot read the time {text!r}: use ISO 8601 (2024-03-17 or 2024-03-17T10:00:00Z),"
            " a relative age (30m, 24h, 7d, 2w) or 'now'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_text_match(op: str, value: str | None) -> TextMatch:
    """A text criterion from its CLI form (``--sender-op begins --sender alice``)."""
    try:
        operator = Op(op)
    except ValueError:
        choices = ", ".join(o.value for o in Op)
        raise SearchInputError(f"unknown match {op!r}: use one of {choices}") from None
    return TextMatch(operator, "" if operator is Op.EMPTY else (value or "").strip())


def parse_ip(text: str) -> str:
    """An address or CIDR network (``192.0.2.7``, ``192.0.2.0/24``), normalised."""
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text.strip(), strict=False))
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise SearchInputError(
            f"--sender-ip {text!r} is not an IP address or network (192.0.2.7, 192.0.2.0/24)"
        ) from None
