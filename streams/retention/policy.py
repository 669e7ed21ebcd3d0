"""Which daily indices retention deletes: a pure decision over index names, today's date, the
keep period and the legal holds.

The law (Computer Crime Act B.E. 2550 s.26) wants traffic data kept at least 90 days from
collection, and an official may order it kept longer, up to 2 years: that is a *legal hold*.
An index ``esa-<kind>-YYYY.MM.DD`` holds data collected on that UTC day, whose newest record is
less than a day younger than the day itself; so with ``keep_days`` N it may go once its day is
*before* ``today - N``: then every record in it is at least N days old.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from streams.errors import EsatrackError

LEGAL_MINIMUM_DAYS: Final = 90
MAX_HOLD_YEARS: Final = 2


class RetentionInputError(EsatrackError):
    """A retention or hold argument is out of bounds; the message says the allowed range."""


@dataclass(frozen=True)
class DailyIndex:
    """A daily index and what its name says: kind and UTC day."""

    name: str
    kind: str
    day: date


@dataclass(frozen=True)
class Hold:
    """A legal hold: data of days ``start``..``end`` (inclusive), optionally of one appliance
    and/or one kind, must not be deleted until ``until`` (inclusive)."""

    id: str
    reason: str
    start: date
    end: date
    until: date
    created_by: str
    created_at: datetime
    host: str | None = None
    kind: str | None = None
    removed_at: datetime | None = None
    removed_by: str | None = None

    def active(self, today: date) -> bool:
        """Whether the hold still protects data: not removed and not past its end date."""
        return self.removed_at is None and today <= self.until

    def covers(self, index: DailyIndex) -> bool:
        """Whether the index holds data under this hold. A host-scoped hold keeps the whole
        daily index: indices are per day and kind, not per appliance, and keeping more is the
        safe side."""
        return self.start <= index.day <= self.end and self.kind in (None, index.kind)


class Action(StrEnum):
    """What retention does with an index."""

    DELETE = "delete"
    KEEP = "keep"


@dataclass(frozen=True)
class Decision:
    """One index, what happens to it, and why (printed as is)."""

    index: DailyIndex
    action: Action
    why: str


def daily_index_pattern(prefix: str) -> re.Pattern[str]:
    """The exact shape of a daily index under ``prefix`` (``esa-``): ``esa-messages-2024.03.17``."""
    return re.compile(rf"^{re.escape(prefix)}(?P<kind>[a-z0-9_]+)-(?P<y>\d{{4}})\.(?P<m>\d{{2}})"
                      r"\.(?P<d>\d{2})$")


def parse_daily_index(name: str, prefix: str) -> DailyIndex | None:
    """The :class:`DailyIndex` of a name, or ``None`` if the name is not a daily index (those
    are never touched)."""
    match = daily_index_pattern(prefix).match(name)
    if match is None:
        return None
    try:
        day = date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        return None
    return DailyIndex(name=name, kind=match["kind"], day=day)


def cutoff(today: date, keep_days: int) -> date:
    """The first day that is kept: indices of earlier days are expired."""
    return today - timedelta(days=keep_days)


def check_keep_days(keep_days: int, *, below_legal_minimum: bool) -> list[str]:
    """Validate ``--keep-days``; return warnings to print. Below the legal minimum is refused
    unless explicitly allowed."""
    if keep_days < 1:
        raise RetentionInputError("--keep-days must be at least 1")
    if keep_days >= LEGAL_MINIMUM_DAYS:
        return []
    if not below_legal_minimum:
        raise RetentionInputError(
            f"--keep-days {keep_days} is below the legal minimum of {LEGAL_MINIMUM_DAYS} days "
            "(Computer Crime Act s.26); if this is really meant (e.g. a test system), add "
            "--below-legal-minimum"
        )
    return [f"WARNING: keeping only {keep_days} days, below the legal minimum of "
            f"{LEGAL_MINIMUM_DAYS} days for traffic data"]


def latest_hold_end(today: date) -> date:
    """The latest end date a hold may have: two years from today (28 Feb for 29 Feb)."""
    try:
        return today.replace(year=today.year + MAX_HOLD_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year + MAX_HOLD_YEARS, day=28)


def check_hold(start: date, end: date, until: date, today: date) -> None:
    """Validate a new hold's dates; raise with the allowed range."""
    if end < start:
        raise RetentionInputError(f"hold range ends ({end}) before it starts ({start})")
    if until < today:
        raise RetentionInputError(f"hold end date {until} is in the past (today is {today})")
    latest = latest_hold_end(today)
    if until > latest:
        raise RetentionInputError(
            f"hold end date {until} is more than {MAX_HOLD_YEARS} years away; the law allows "
            f"holding traffic data up to {MAX_HOLD_YEARS} years: use --until {latest} or earlier"
        )


def plan(
    names: list[str], *, today: date, keep_days: int, holds: list[Hold], prefix: str,
    kinds: tuple[str, ...] = (),
) -> list[Decision]:
    """One decision per daily index among ``names`` (others are ignored), oldest first.

    ``kinds`` limits retention to those kinds (empty: all)."""
    first_kept = cutoff(today, keep_days)
    live = [hold for hold in holds if hold.active(today)]
    decisions: list[Decision] = []
    for name in names:
        index = parse_daily_index(name, prefix)
        if index is None or (kinds and index.kind not in kinds):
            continue
        if index.day >= first_kept:
            decisions.append(Decision(index, Action.KEEP, f"within {keep_days} days"))
            continue
        holders = [hold for hold in live if hold.covers(index)]
        if holders:
            why = "; ".join(_describe(hold) for hold in holders)
            decisions.append(Decision(index, Action.KEEP, f"legal hold: {why}"))
            continue
        decisions.append(Decision(index, Action.DELETE, f"older than {keep_days} days"))
    decisions.sort(key=lambda d: (d.index.day, d.index.name))
    return decisions


def _describe(hold: Hold) -> str:
    scope = "".join(
        f" {label} {value}" for label, value in (("host", hold.host), ("kind", hold.kind)) if value
    )
    return f"{hold.id} until {hold.until}{scope} ({hold.reason})"
