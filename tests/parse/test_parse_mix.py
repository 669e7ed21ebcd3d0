"""The benchmark mix (bench/mix.py) is realistic for the parser: deterministic, fully parsed."""

from __future__ import annotations

from collections import Counter

from bench.mix import HOSTS, START, generate, plan
from streams import events as ev
from streams.parse import Parser


def test_same_seed_same_lines_other_seed_other_lines() -> None:
    """generate() is deterministic by seed."""
    assert generate(50, seed=7) == generate(50, seed=7)
    assert generate(50, seed=7) != generate(50, seed=8)


def test_mix_parses_without_unknown_lines() -> None:
    """Every generated line parses to a known kind, with about 25 lines per message."""
    lines = generate(400, seed=3)
    events = [Parser().parse_line(line, START + 3600) for line in lines]
    kinds = Counter(event.kind for event in events)
    assert kinds[ev.UNKNOWN] == 0
    assert 20 <= len(lines) / 400 <= 32
    messages = [m for m in plan(400, seed=3) if m.mid is not None]
    assert kinds[ev.MSG_START] == len(messages)
    assert {event.host for event in events} == set(HOSTS)


def test_lines_are_in_time_order_per_appliance() -> None:
    """Each appliance's lines come in non-decreasing time order."""
    parser = Parser()
    last: dict[str | None, float] = {}
    for line in generate(300, seed=5):
        event = parser.parse_line(line, START + 3600)
        assert event.ts is not None
        assert event.ts >= last.get(event.host, 0.0)
        last[event.host] = event.ts
