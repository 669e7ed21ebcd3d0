"""Properties: reordering within grace, duplicates and restarts change no record; nothing
crashes the engine. Streams come from the benchmark's realistic mix (bench/mix.py)."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import events as ev
from streams.correlate import Correlator, Record
from streams.events import Event
from tests.correlate.correlate_support import parse, run_events, validate

_MIX_PATH = Path(__file__).resolve().parents[2] / "bench" / "mix.py"


def _load_mix() -> ModuleType:
    spec = importlib.util.spec_from_file_location("esatrack_bench_mix", _MIX_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


MIX = _load_mix()
_STREAMS: dict[tuple[int, int], list[Event]] = {}


def mix_events(seed: int, messages: int) -> list[Event]:
    """The mix's lines for ``messages`` connections on three appliances, parsed (cached)."""
    key = (seed, messages)
    if key not in _STREAMS:
        _STREAMS[key] = parse(MIX.generate(messages, seed=seed, rate=20.0))
    return _STREAMS[key]


PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
streams = st.tuples(st.integers(0, 5), st.integers(5, 40))


@PROPERTY
@given(stream=streams, rnd=st.randoms(use_true_random=False))
def test_reordering_within_grace_gives_the_same_records(stream: tuple[int, int],
                                                        rnd: random.Random) -> None:
    """Lines displaced by less than the grace period give the same final records."""
    events = mix_events(*stream)
    reference = run_events(events, check=False).final
    grace = 10.0
    shuffled = sorted(events, key=lambda e: (e.ts or 0.0) + rnd.uniform(0.0, grace * 0.999))
    assert run_events(shuffled, Correlator(grace_seconds=grace), check=False).final == reference


@PROPERTY
@given(stream=streams, rnd=st.randoms(use_true_random=False),
       share=st.floats(0.0, 1.0))
def test_duplicated_lines_give_the_same_emissions(stream: tuple[int, int], rnd: random.Random,
                                                   share: float) -> None:
    """Lines delivered again, anywhere after their first delivery, change no emission."""
    events = mix_events(*stream)
    doubled = list(events)
    for index in range(len(events)):
        if rnd.random() < share:
            original = doubled.index(events[index])
            doubled.insert(rnd.randint(original + 1, len(doubled)), events[index])
    assert run_events(doubled, check=False).emitted == run_events(events, check=False).emitted


def _in_order(records: list[Record]) -> list[Record]:
    """Emissions by (id, revision): a restored engine emits the same records, though states
    that fall due at the same watermark step may come out in another order."""
    return sorted(records, key=lambda r: (r["id"], r["revision"]))


def _export_all(engine: Correlator) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for key in engine.state_keys():
        data = engine.export(key)
        assert data is not None
        out[key] = data
    return out


def _restored(table: dict[str, bytes]) -> Correlator:
    engine = Correlator(track_dirty=True)
    for key, data in table.items():
        engine.restore(key, data)
    return engine


@PROPERTY
@given(stream=streams, cut=st.floats(0.0, 1.0))
def test_save_and_restore_at_any_point_continues_identically(stream: tuple[int, int],
                                                             cut: float) -> None:
    """An engine saved at any line and restored into a fresh one emits what the original
    would have emitted."""
    events = mix_events(*stream)
    at = int(cut * len(events))
    first = Correlator()
    before = run_events(events[:at], first, flush=False, check=False).emitted
    after = run_events(events[at:], _restored(_export_all(first)), check=False).emitted
    assert _in_order(before + after) == _in_order(run_events(events, check=False).emitted)


@PROPERTY
@given(stream=streams, cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
def test_dirty_keys_keep_a_table_that_restores_identically(stream: tuple[int, int],
                                                           cuts: list[float]) -> None:
    """Writing only dirty keys into a table after each line (as the stream workers do) keeps a
    table from which a fresh engine continues identically, however often it restarts."""
    events = mix_events(*stream)
    points = sorted({int(c * len(events)) for c in cuts})
    table: dict[str, bytes] = {}
    engine = Correlator(track_dirty=True)
    emitted: list[Record] = []
    for index, event in enumerate(events):
        if index in points:
            engine = _restored(table)
        emitted.extend(engine.apply(event))
        for key in engine.dirty_keys():
            data = engine.export(key)
            if data is None:
                table.pop(key, None)
            else:
                table[key] = data
    emitted.extend(engine.flush())
    assert _in_order(emitted) == _in_order(run_events(events, check=False).emitted)
    assert set(table) == set(engine.state_keys())


# --- Emission at the finish line (the stream workers' default) --------------------------


def _ids_and_revisions(records: list[Record]) -> list[tuple[str, int]]:
    return sorted((r["id"], r["revision"]) for r in records)


@PROPERTY
@given(stream=streams, rnd=st.randoms(use_true_random=False))
def test_emitting_at_the_finish_keeps_the_final_records_under_reordering(
        stream: tuple[int, int], rnd: random.Random) -> None:
    """With provisional records at the finish line, lines displaced within the grace still
    give the same final records as an engine that waits; no revision is emitted twice."""
    events = mix_events(*stream)
    reference = run_events(events, check=False).final
    grace = 10.0
    shuffled = sorted(events, key=lambda e: (e.ts or 0.0) + rnd.uniform(0.0, grace * 0.999))
    run = run_events(shuffled, Correlator(grace_seconds=grace, emit_at_finish=True),
                     check=False)
    assert run.final == reference
    pairs = _ids_and_revisions(run.emitted)
    assert len(pairs) == len(set(pairs))


@PROPERTY
@given(stream=streams)
def test_emitting_at_the_finish_costs_no_extra_revision_for_lines_in_order(
        stream: tuple[int, int]) -> None:
    """Lines in time order: every record comes out the same number of times, with the same
    revisions, whether it waits for the grace or goes at its finish."""
    events = mix_events(*stream)
    waiting = run_events(events, check=False).emitted
    early = run_events(events, Correlator(emit_at_finish=True), check=False).emitted
    assert _ids_and_revisions(early) == _ids_and_revisions(waiting)


def test_emitting_at_the_finish_sends_the_record_with_the_finish_line() -> None:
    """The record comes out of the ``apply`` of its finish line, well before the grace ends;
    a redelivered finish line sends nothing again."""
    events = mix_events(0, 20)
    engine = Correlator(grace_seconds=10.0, emit_at_finish=True)
    finishes = 0
    for event in events:
        out = engine.apply(event)
        if event.kind == "msg_finished" and event.mid is not None:
            finishes += 1
            mids = [r["mid"] for r in out if r["type"] == "message"]
            assert event.mid in mids, event.body
            again = engine.apply(event)
            assert not [r for r in again if r["type"] == "message" and r["mid"] == event.mid]
    assert finishes >= 10


@PROPERTY
@given(stream=streams, cut=st.floats(0.0, 1.0), rnd=st.randoms(use_true_random=False))
def test_emitting_at_the_finish_survives_save_and_restore(stream: tuple[int, int], cut: float,
                                                           rnd: random.Random) -> None:
    """A restored engine that emits at the finish continues exactly like the original, on a
    reordered stream too (provisional records already sent are not sent again)."""
    events = mix_events(*stream)
    events = sorted(events, key=lambda e: (e.ts or 0.0) + rnd.uniform(0.0, 5.0))
    at = int(cut * len(events))
    first = Correlator(emit_at_finish=True)
    before = run_events(events[:at], first, flush=False, check=False).emitted
    second = Correlator(emit_at_finish=True)
    for key, data in _export_all(first).items():
        second.restore(key, data)
    after = run_events(events[at:], second, check=False).emitted
    whole = run_events(events, Correlator(emit_at_finish=True), check=False).emitted
    assert _in_order(before + after) == _in_order(whole)


_VOCABULARY = [
    "MID", "ICID", "DCID", "RID", "Start", "New", "SMTP", "Message", "finished", "done",
    "aborted", "To:", "From:", "<a@b.example>", "<>", "[0,", "1]", "[0]", "ready", "bytes",
    "Subject", "'x'", "Message-ID", "quarantined", "to", '"Outbreak"', "released", "from",
    "quarantine", "rewritten", "split", "creating", "generated", "for", "bounce", "of",
    "Bounced:", "Delayed:", "Delivery", "start", "close", "lost", "ACCEPT", "REJECT", "SG",
    "SBRS", "-1.0", "TLS", "success", "Auth:", "(ICID", "5)", "succeeded", "user:", "0", "5",
    "6", "7", "99999999999999999999", "-3", "\x1e", "\x1f", "é", "ยืนยัน", "\\r\\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 400_000),
                          st.lists(st.sampled_from(_VOCABULARY), max_size=12),
                          st.sampled_from(["esa", "esa2"])), max_size=40))
def test_no_line_crashes_the_engine(lines: list[tuple[int, list[str], str]]) -> None:
    """Any sequence of line-like text is correlated without an exception into valid records."""
    run_events(parse([(t, " ".join(words), host) for t, words, host in lines]))


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(),
                    st.text(max_size=20), st.lists(st.integers(-2, 5), max_size=3),
                    st.lists(st.text(max_size=3), max_size=2))


@st.composite
def _events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(sorted(ev.KIND_FIELDS)))
    keys = ev.KIND_FIELDS[kind]
    data: dict[str, Any] = {key: draw(_VALUES) for key in keys if draw(st.booleans())}
    ids = st.one_of(st.none(), st.integers(0, 20))
    return Event(kind=kind, ts=draw(st.one_of(st.none(), st.floats(-1e3, 1e12), st.floats())),
                 host=draw(st.sampled_from([None, "esa", "esa2"])), body=draw(st.text(max_size=20)),
                 icid=draw(ids), mid=draw(ids), dcid=draw(ids), data=data)


@settings(max_examples=300, deadline=None)
@given(st.lists(_events(), max_size=60))
def test_no_event_crashes_the_engine(events: list[Event]) -> None:
    """Events with any data values (wrong types included) never crash it; records stay valid."""
    engine = Correlator(grace_seconds=5, message_horizon=1000, connection_horizon=500)
    records = engine.apply_all(events) + engine.flush()
    for record in records:
        validate(record)


def test_the_mix_comes_out_as_planned() -> None:
    """Single-recipient messages of the mix end in the status their plan says."""
    planned = MIX.plan(300, seed=7, rate=50.0)
    run = run_events(parse(MIX.render(planned)))
    expected = {"delivered": "delivered", "bounced": "bounced", "dropped": "dropped",
                "quarantined": "quarantined", "delayed_then_delivered": "delivered"}
    checked = 0
    for message in planned:
        if message.mid is None:
            assert run.one("connection", message.icid, message.host)["action"] == "REJECT"
            continue
        record = run.one("message", message.mid, message.host)
        assert record["sender"] == message.sender and record["subject"] == message.subject
        if len(message.recipients) == 1 and len(record["recipients"]) == 1 and \
                message.outcome in expected:
            assert record["status"] == expected[message.outcome], message
            checked += 1
    assert checked > 100
