"""Replay's pure parts: reading plain and gzip files line by line, and the rate limiter."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streams.ingest.replay import RateLimiter, ReplayCounts, lines_of, open_log

CONTENT = (b"Begin Logfile\r\nVersion: 7.6.3-019 SN: 420D\n\n"
           b"Wed Nov 19 09:16:38 2014 Info: x \xff\nlast")


@pytest.mark.parametrize("compressed", [False, True])
def test_lines_of_plain_and_gzip(tmp_path: Path, compressed: bool) -> None:
    """Plain and gzip files (gzip found by content, whatever the name) give the same lines."""
    path = tmp_path / "mail_logs.@20141119T091638.s"
    path.write_bytes(gzip.compress(CONTENT) if compressed else CONTENT)
    reader, raw = open_log(path)
    try:
        lines = list(lines_of(reader))
    finally:
        reader.close()
        raw.close()
    assert lines == [b"Begin Logfile", b"Version: 7.6.3-019 SN: 420D", b"",
                     b"Wed Nov 19 09:16:38 2014 Info: x \xff", b"last"]


def test_rate_limiter_sleeps_to_schedule() -> None:
    """At 100 lines/s, 50 lines take half a second of (fake) time, and no more."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(100.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(50):
        limiter.wait()
    assert now[0] == pytest.approx(0.5)
    assert len(slept) == 50


def test_rate_limiter_off() -> None:
    """Without a rate, the limiter never sleeps."""
    limiter = RateLimiter(None, clock=lambda: 0.0, sleep=lambda s: pytest.fail("slept"))
    for _ in range(10):
        limiter.wait()


@pytest.mark.parametrize(("counts", "complete"), [
    (ReplayCounts(read=10, empty=2, produced=8, acknowledged=8), True),
    (ReplayCounts(read=10, empty=2, produced=8, acknowledged=7, failed=1), False),
    (ReplayCounts(read=10, empty=0, produced=9, acknowledged=9, overlong=1), False),
    (ReplayCounts(read=10, empty=0, produced=10, acknowledged=9), False),
    (ReplayCounts(read=10, empty=0, produced=10, acknowledged=10, unreadable_files=1), False),
])
def test_complete_only_when_every_line_acknowledged(counts: ReplayCounts, complete: bool) -> None:
    """A replay is complete only if every non-empty line read was acknowledged."""
    assert counts.complete() is complete
