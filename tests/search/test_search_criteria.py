"""Time bounds, text operators and CLI arguments -> Criteria, no services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.cli import build_parser
from streams.search.cli import criteria_from_args
from streams.search.criteria import (
    Direction,
    Event,
    Op,
    SearchInputError,
    TextMatch,
    parse_ip,
    parse_text_match,
    parse_time,
)

NOW = datetime(2024, 3, 17, 12, 0, tzinfo=UTC)

TIMES = [
    ("now", NOW),
    ("24h", NOW - timedelta(hours=24)),
    ("90m", NOW - timedelta(minutes=90)),
    ("7d", NOW - timedelta(days=7)),
    ("2w", NOW - timedelta(weeks=2)),
    ("30s", NOW - timedelta(seconds=30)),
    ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
    ("2024-03-01T10:15:00", datetime(2024, 3, 1, 10, 15, tzinfo=UTC)),
    ("2024-03-01T10:15:00Z", datetime(2024, 3, 1, 10, 15, tzinfo=UTC)),
    ("2024-03-01T17:15:00+07:00", datetime(2024, 3, 1, 10, 15, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "expected"), TIMES)
def test_time_bounds(text: str, expected: datetime) -> None:
    """Relative ages count back from now; ISO times without a zone are UTC."""
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "24x", "2024-13-01", ""])
def test_unreadable_time_names_the_forms(text: str) -> None:
    """An unreadable time is refused with the accepted forms in the message."""
    with pytest.raises(SearchInputError, match="ISO 8601"):
        parse_time(text, now=NOW)


def test_text_match_forms() -> None:
    """Operators map to Op; 'empty' drops the value; unknown operators are refused."""
    assert parse_text_match("begins", " a@ ") == TextMatch(Op.BEGINS, "a@")
    assert parse_text_match("empty", "ignored") == TextMatch(Op.EMPTY, "")
    with pytest.raises(SearchInputError, match="is, begins, contains, empty"):
        parse_text_match("like", "x")


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.7", "192.0.2.7"), ("192.0.2.9/24", "192.0.2.0/24"), ("2001:DB8::1", "2001:db8::1"),
])
def test_ip_forms(text: str, expected: str) -> None:
    """Addresses and networks are normalised (host bits of a network dropped)."""
    assert parse_ip(text) == expected


def test_cli_arguments_become_criteria() -> None:
    """Every search option lands in the matching Criteria field."""
    argv = ["search", "--sender", "A@x", "--sender-match", "contains", "--recipient", "b@y",
            "--subject-match", "empty", "--from", "24h", "--to", "now", "--sender-ip",
            "192.0.2.1", "--message-id", "<m@x>", "--mid", "42", "--host", "esa1", "--host",
            "esa2", "--attachment", "a.pdf", "--direction", "inbound", "--event",
            "virus_positive", "--event", "delivered"]
    args = build_parser(argv).parse_args(argv)
    criteria = criteria_from_args(args, now=NOW)
    assert criteria.sender == TextMatch(Op.CONTAINS, "A@x")
    assert criteria.recipient == TextMatch(Op.IS, "b@y")
    assert criteria.subject == TextMatch(Op.EMPTY)
    assert criteria.start == NOW - timedelta(hours=24)
    assert criteria.end == NOW
    assert criteria.sender_ip == "192.0.2.1"
    assert criteria.message_id == "<m@x>"
    assert criteria.mid == 42
    assert criteria.hosts == ("esa1", "esa2")
    assert criteria.attachment == "a.pdf"
    assert criteria.direction is Direction.INBOUND
    assert criteria.events == (Event.VIRUS_POSITIVE, Event.DELIVERED)
