"""Retention decisions and hold rules, table-driven, no services."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from streams.retention.policy import (
    Action,
    Hold,
    RetentionInputError,
    check_hold,
    check_keep_days,
    cutoff,
    latest_hold_end,
    parse_daily_index,
    plan,
)

TODAY = date(2024, 6, 30)
CREATED = datetime(2024, 6, 1, tzinfo=UTC)


def _hold(start: date, end: date, until: date = date(2025, 1, 1), *, kind: str | None = None,
          host: str | None = None, removed_at: datetime | None = None,
          removed_by: str | None = None) -> Hold:
    return Hold(id="hold-1", reason="order 7/2567", start=start, end=end, until=until,
                created_by="officer", created_at=CREATED, kind=kind, host=host,
                removed_at=removed_at, removed_by=removed_by)


def _name(day: date, kind: str = "messages") -> str:
    return f"esa-{kind}-{day:%Y.%m.%d}"


@pytest.mark.parametrize(("name", "expected"), [
    ("esa-messages-2024.03.17", ("messages", date(2024, 3, 17))),
    ("esa-raw-2024.02.29", ("raw", date(2024, 2, 29))),
    ("esa-messages-2023.02.29", None),  # no such day
    ("esa-messages", None),  # the alias
    ("esa-messages-2024.03.17-restored", None),
    ("esatrack-holds", None),
    ("other-messages-2024.03.17", None),
])
def test_only_daily_index_names_are_recognised(
    name: str, expected: tuple[str, date] | None
) -> None:
    """Only exact esa-<kind>-YYYY.MM.DD names with a real date are daily indices."""
    parsed = parse_daily_index(name, "esa-")
    assert (None if parsed is None else (parsed.kind, parsed.day)) == expected


def test_cutoff_keeps_every_record_younger_than_keep_days() -> None:
    """With 90 days kept, the index of today-90 stays and today-91 goes."""
    first_kept = cutoff(TODAY, 90)
    assert first_kept == TODAY - timedelta(days=90)
    decisions = plan([_name(TODAY - timedelta(days=90)), _name(TODAY - timedelta(days=91))],
                     today=TODAY, keep_days=90, holds=[], prefix="esa-")
    assert [(d.index.day, d.action) for d in decisions] == [
        (TODAY - timedelta(days=91), Action.DELETE), (TODAY - timedelta(days=90), Action.KEEP)]


def test_plan_over_a_range_of_days() -> None:
    """Over 200 daily indices of two kinds, exactly those before the cutoff are deleted."""
    names = [_name(TODAY - timedelta(days=n), kind) for n in range(200)
             for kind in ("messages", "connections")]
    names.append("esa-messages")  # not a daily index: ignored
    decisions = plan(names, today=TODAY, keep_days=100, holds=[], prefix="esa-")
    deleted = {d.index.name for d in decisions if d.action is Action.DELETE}
    expected = {_name(TODAY - timedelta(days=n), kind) for n in range(101, 200)
                for kind in ("messages", "connections")}
    assert deleted == expected
    assert len(decisions) == 400
    assert [d.index.day for d in decisions] == sorted(d.index.day for d in decisions)


HOLD_CASES = [
    ("hold covering the day keeps it",
     _hold(date(2024, 1, 1), date(2024, 1, 31)), Action.KEEP),
    ("hold on other days does not",
     _hold(date(2024, 2, 1), date(2024, 2, 28)), Action.DELETE),
    ("range ends are inclusive",
     _hold(date(2024, 1, 15), date(2024, 1, 15)), Action.KEEP),
    ("expired hold no longer protects",
     _hold(date(2024, 1, 1), date(2024, 1, 31), until=TODAY - timedelta(days=1)), Action.DELETE),
    ("hold ending today still protects",
     _hold(date(2024, 1, 1), date(2024, 1, 31), until=TODAY), Action.KEEP),
    ("removed hold no longer protects",
     _hold(date(2024, 1, 1), date(2024, 1, 31), removed_at=CREATED, removed_by="x"),
     Action.DELETE),
    ("hold of another kind does not protect",
     _hold(date(2024, 1, 1), date(2024, 1, 31), kind="raw"), Action.DELETE),
    ("hold of this kind protects",
     _hold(date(2024, 1, 1), date(2024, 1, 31), kind="messages"), Action.KEEP),
    ("host-scoped hold keeps the whole daily index",
     _hold(date(2024, 1, 1), date(2024, 1, 31), host="esa2"), Action.KEEP),
]


@pytest.mark.parametrize(("name", "hold", "action"), HOLD_CASES, ids=[c[0] for c in HOLD_CASES])
def test_holds_protect_expired_indices(name: str, hold: Hold, action: Action) -> None:
    """An expired index is kept exactly when an active hold covers its day and kind."""
    decisions = plan([_name(date(2024, 1, 15))], today=TODAY, keep_days=90, holds=[hold],
                     prefix="esa-")
    assert [d.action for d in decisions] == [action], name
    if action is Action.KEEP:
        assert "legal hold: hold-1" in decisions[0].why


def test_kind_filter_limits_retention() -> None:
    """With kinds given, other kinds' indices are not even planned."""
    names = [_name(date(2024, 1, 1), "messages"), _name(date(2024, 1, 1), "raw")]
    decisions = plan(names, today=TODAY, keep_days=90, holds=[], prefix="esa-", kinds=("raw",))
    assert [d.index.name for d in decisions] == ["esa-raw-2024.01.01"]


@pytest.mark.parametrize(("days", "allowed", "warns"), [
    (90, False, False), (365, False, False), (30, True, True), (89, True, True),
])
def test_keep_days_at_or_above_minimum_or_explicitly_below(
    days: int, allowed: bool, warns: bool
) -> None:
    """90+ days pass silently; fewer need --below-legal-minimum and print a warning."""
    assert bool(check_keep_days(days, below_legal_minimum=allowed)) is warns


@pytest.mark.parametrize("days", [89, 1, 30])
def test_keep_days_below_minimum_refused(days: int) -> None:
    """Fewer than 90 days without the explicit flag is refused, naming the flag."""
    with pytest.raises(RetentionInputError, match="--below-legal-minimum"):
        check_keep_days(days, below_legal_minimum=False)


def test_zero_keep_days_refused_even_with_flag() -> None:
    """Keeping zero days would delete today's index: never allowed."""
    with pytest.raises(RetentionInputError, match="at least 1"):
        check_keep_days(0, below_legal_minimum=True)


@pytest.mark.parametrize(("today", "latest"), [
    (date(2024, 6, 30), date(2026, 6, 30)),
    (date(2024, 2, 29), date(2026, 2, 28)),
])
def test_latest_hold_end_is_two_years(today: date, latest: date) -> None:
    """A hold may last two years from today (29 Feb maps to 28 Feb)."""
    assert latest_hold_end(today) == latest


@pytest.mark.parametrize(("start", "end", "until", "message"), [
    (date(2024, 1, 2), date(2024, 1, 1), date(2025, 1, 1), "before it starts"),
    (date(2024, 1, 1), date(2024, 1, 2), date(2024, 6, 29), "in the past"),
    (date(2024, 1, 1), date(2024, 1, 2), date(2026, 7, 1), "more than 2 years.*2026-06-30"),
])
def test_bad_holds_refused(start: date, end: date, until: date, message: str) -> None:
    """Inverted ranges, past end dates and ends beyond two years are refused clearly."""
    with pytest.raises(RetentionInputError, match=message):
        check_hold(start, end, until, TODAY)


def test_hold_up_to_exactly_two_years_accepted() -> None:
    """A hold ending exactly two years from today is allowed."""
    check_hold(date(2024, 1, 1), date(2024, 1, 2), date(2026, 6, 30), TODAY)
