"""Retention and legal holds against the real OpenSearch: daily indices over a range of dates,
holds that protect some of them, dry run, and the hold commands."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from opensearchpy import OpenSearch

from streams.cli import main
from streams.retention.apply import list_indices
from streams.retention.holds import HoldStore
from streams.retention.policy import Hold

pytestmark = pytest.mark.integration

AGES = (0, 1, 89, 90, 91, 92, 120, 200)
"""Days before today of the daily indices created (for two kinds)."""


@pytest.fixture
def prefix(opensearch: OpenSearch) -> Iterator[str]:
    """A unique stand-in for ``esa-`` so the test sees only its own daily indices."""
    value = f"test-retention-{uuid.uuid4().hex[:8]}-"
    yield value
    for name in list_indices(opensearch, value):
        opensearch.indices.delete(index=name, ignore_unavailable=True)


def _day(age: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=age)


def _name(prefix: str, kind: str, age: int) -> str:
    return f"{prefix}{kind}-{_day(age):%Y.%m.%d}"


def _hold(hid: str, age: int, *, until: date, kind: str | None = None,
          removed: bool = False) -> Hold:
    now = datetime.now(UTC)
    return Hold(id=hid, reason=f"test {hid}", start=_day(age), end=_day(age), until=until,
                created_by="pytest", created_at=now, kind=kind,
                removed_at=now if removed else None, removed_by="pytest" if removed else None)


def _create(client: OpenSearch, names: list[str]) -> None:
    for name in names:
        client.indices.create(index=name, body={
            "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}}})


def test_retention_deletes_exactly_expired_unheld_indices(
    opensearch: OpenSearch, prefix: str, new_index: Callable[[], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Of daily indices over 200 days, only those older than 90 days and not under an active
    hold go; a dry run first deletes nothing; other names under the prefix are never touched."""
    names = [_name(prefix, kind, age) for kind in ("messages", "connections") for age in AGES]
    bystander = f"{prefix}messages-not-a-day"
    _create(opensearch, [*names, bystander])
    holds_index = new_index()
    store = HoldStore(opensearch, holds_index)
    next_year = _day(-365)
    store.add(_hold("hold-active", 120, until=next_year, kind="messages"))
    store.add(_hold("hold-expired", 200, until=_day(1)))
    store.add(_hold("hold-removed", 92, until=next_year, removed=True))

    argv = ["retention", "--prefix", prefix, "--holds-index", holds_index]
    assert main([*argv, "--dry-run"]) == 0
    dry = capsys.readouterr()
    assert sorted(list_indices(opensearch, prefix)) == sorted([*names, bystander])
    would = set(re.findall(r"^would delete (\S+)", dry.out, flags=re.MULTILINE))
    expected_gone = {_name(prefix, kind, age) for kind in ("messages", "connections")
                     for age in (91, 92, 120, 200)} - {_name(prefix, "messages", 120)}
    assert would == expected_gone
    assert "legal hold: hold-active" in dry.out
    assert "would delete 7 of 16" in dry.err

    assert main(argv) == 0
    real = capsys.readouterr()
    assert set(re.findall(r"^deleted (\S+)", real.out, flags=re.MULTILINE)) == expected_gone
    remaining = set(list_indices(opensearch, prefix))
    assert remaining == ({*names, bystander} - expected_gone)
    assert "deleted 7 of 16" in real.err


def test_keep_days_below_legal_minimum(
    opensearch: OpenSearch, prefix: str, new_index: Callable[[], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--keep-days under 90 is refused without the explicit flag, and warns with it."""
    _create(opensearch, [_name(prefix, "raw", 0), _name(prefix, "raw", 31)])
    argv = ["retention", "--prefix", prefix, "--holds-index", new_index(), "--keep-days", "30"]
    assert main(argv) == 2
    assert "--below-legal-minimum" in capsys.readouterr().err
    assert len(list_indices(opensearch, prefix)) == 2
    assert main([*argv, "--below-legal-minimum"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err
    assert list_indices(opensearch, prefix) == [_name(prefix, "raw", 0)]


def test_hold_add_list_remove(
    opensearch: OpenSearch, new_index: Callable[[], str], capsys: pytest.CaptureFixture[str],
) -> None:
    """Holds are added with who/when/reason/range, listed, and removed (kept as removed)."""
    holds = ["hold", "--holds-index", new_index()]
    until = _day(-30).isoformat()
    assert main([*holds, "add", "--reason", "DES order 12/2567", "--from", "2024-01-01",
                 "--to", "2024-01-31", "--until", until, "--kind", "messages",
                 "--by", "officer-a"]) == 0
    added = capsys.readouterr().out
    match = re.search(r"(hold-[0-9a-f]{12})", added)
    assert match, added
    hold_id = match.group(1)

    assert main([*holds, "list"]) == 0
    listed = capsys.readouterr().out
    assert hold_id in listed
    for part in ("active", "data 2024-01-01..2024-01-31", "kind=messages", f"until {until}",
                 "by officer-a", "reason: DES order 12/2567"):
        assert part in listed, part

    assert main([*holds, "remove", hold_id, "--by", "officer-b"]) == 0
    capsys.readouterr()
    assert main([*holds, "list"]) == 0
    assert capsys.readouterr().out.strip() == "no active holds"
    assert main([*holds, "list", "--all"]) == 0
    everything = capsys.readouterr().out
    assert "removed by officer-b" in everything and hold_id in everything

    assert main([*holds, "remove", hold_id]) == 2
    assert "no active hold" in capsys.readouterr().err


def test_hold_beyond_two_years_refused(
    opensearch: OpenSearch, new_index: Callable[[], str], capsys: pytest.CaptureFixture[str],
) -> None:
    """An end date more than two years away is refused with the latest allowed date."""
    holds_index = new_index()
    too_late = _day(-(2 * 366 + 1)).isoformat()
    assert main(["hold", "--holds-index", holds_index, "add", "--reason", "x", "--from",
                 "2024-01-01", "--to", "2024-01-02", "--until", too_late]) == 2
    err = capsys.readouterr().err
    assert "more than 2 years" in err and "--until" in err
    assert HoldStore(opensearch, holds_index).all() == []
