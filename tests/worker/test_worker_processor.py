"""The worker's pure core: raw lines of a partition in, records, dead letters and state out."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from streams.settings import Settings, load_settings
from streams.worker.codec import dead_letter_line
from streams.worker.processor import (
    CONTEXT_PREFIX,
    Output,
    PartitionProcessor,
    RawLine,
    split_value,
)
from tests.worker.worker_helpers import (
    keyed_lines,
    offline_records,
    sample_files,
    untimed,
    without_revision,
)

NOW = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def raw_lines(pairs: Sequence[tuple[bytes, bytes]], start: int = 0) -> list[RawLine]:
    return [RawLine(key, line, NOW, start + i) for i, (key, line) in enumerate(pairs)]


def collect(outputs: Sequence[Output]) -> dict[str, dict[str, Any]]:
    """Last revision by id over outputs, as a sink that overwrites by key would keep."""
    final: dict[str, dict[str, Any]] = {}
    for out in outputs:
        for key, value in out.messages + out.connections:
            record = orjson.loads(value)
            assert key == record["id"].encode()
            final[record["id"]] = record
    return final


def settings(grace: float = 0.0, *, emit_at_finish: bool = True) -> Settings:
    return load_settings(grace_seconds=grace, emit_at_finish=emit_at_finish)


@pytest.fixture(scope="module")
def samples() -> tuple[list[tuple[bytes, bytes]], dict[str, dict[str, Any]]]:
    files = sample_files()
    return keyed_lines(files), offline_records(files)


def test_samples_give_the_records_of_esatrack_correlate(
    samples: tuple[list[tuple[bytes, bytes]], dict[str, dict[str, Any]]],
) -> None:
    """Every sample record with a time comes out as `esatrack correlate` writes it."""
    pairs, offline = samples
    clock = FakeClock()
    processor = PartitionProcessor(settings(), 0, clock=clock)
    outputs = [processor.process(raw_lines(pairs))]
    clock.now += 5  # the appliances go quiet: the timer lets the grace period pass
    outputs.append(processor.tick(clock.now))
    stream = collect(outputs)
    timed = {rid for rid, r in offline.items() if not untimed(r)}
    assert len(timed) > 40
    assert {rid: without_revision(stream[rid]) for rid in timed if rid in stream} == {
        rid: without_revision(offline[rid]) for rid in timed
    }
    # Records none of whose lines had a time are emitted only by the offline command's
    # end-of-input flush (a known engine gap: such state has nothing to schedule it by).
    assert set(offline) - set(stream) == set(offline) - timed
    assert set(stream) <= set(offline)


@pytest.mark.parametrize("partitions", [2, 3, 5])
def test_partitioned_by_appliance_gives_the_same_records(
    samples: tuple[list[tuple[bytes, bytes]], dict[str, dict[str, Any]]], partitions: int
) -> None:
    """Lines split by appliance key over partitions, one processor each: same records."""
    pairs, offline = samples
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, line in pairs:
        by_partition.setdefault(zlib.crc32(key) % partitions, []).append((key, line))
    outputs = []
    for partition, part in by_partition.items():
        processor = PartitionProcessor(settings(), partition, clock=FakeClock())
        outputs.append(processor.process(raw_lines(part)))
        outputs.append(processor.tick(NOW + 5))
    stream = collect(outputs)
    timed = {rid for rid, r in offline.items() if not untimed(r)}
    assert {rid: without_revision(stream[rid]) for rid in timed} == {
        rid: without_revision(offline[rid]) for rid in timed
    }


def run_with_restart(
    pairs: Sequence[tuple[bytes, bytes]], split: int, replay: int, grace: float = 0.0
) -> dict[str, dict[str, Any]]:
    """Process ``pairs[:split]``, then a fresh processor restored from the saved state
    continues from ``split - replay`` (the lines after the last commit are seen again)."""
    table: dict[bytes, bytes] = {}
    first = PartitionProcessor(settings(grace), 0, clock=FakeClock())
    outputs = [first.process(raw_lines(pairs[:split]))]
    for key, value in outputs[0].state.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    second = PartitionProcessor(settings(grace), 0, clock=FakeClock())
    assert second.load(iter(sorted(table.items()))) == len(table)
    resume = max(0, split - replay)
    outputs.append(second.process(raw_lines(pairs[resume:], resume)))
    outputs.append(second.tick(NOW + grace + 5))
    return collect(outputs)


# Replays are the lines after the last commit: seconds of traffic. (Replaying the samples from
# the very start after a restore is not: they reuse MID 68119155 of appliance "esa" in 2022 and
# 2026, and 2022 lines re-read after the 2026 state exists are taken as late lines of it.)
@pytest.mark.parametrize(("split", "replay"), [(1, 0), (60, 0), (150, 25), (240, 40), (300, 7)])
def test_restored_processor_continues_identically(
    samples: tuple[list[tuple[bytes, bytes]], dict[str, dict[str, Any]]], split: int, replay: int
) -> None:
    """A processor restored from the table, re-reading uncommitted lines, ends the same."""
    pairs, _offline = samples
    uninterrupted = run_with_restart(pairs, len(pairs), 0)
    restarted = run_with_restart(pairs, split, replay)
    assert set(restarted) == set(uninterrupted)
    assert {k: without_revision(v) for k, v in restarted.items()} == {
        k: without_revision(v) for k, v in uninterrupted.items()
    }


BAD_LINES = [
    (b"esa1", b"complete garbage with no framing at all"),
    (b"esa1", b"<166>Mar 17 18:24:37 esa1 mail_logs: Info: frobnicated the \xff\xfe widget"),
]


def test_unknown_lines_become_dead_letters_with_reason_and_raw_bytes() -> None:
    """Each line the parser does not understand is a dead letter keeping its exact bytes."""
    processor = PartitionProcessor(settings(), 4, clock=FakeClock())
    out = processor.process(raw_lines(BAD_LINES, start=100))
    assert out.unknown == len(BAD_LINES)
    assert len(out.dead_letters) == len(BAD_LINES)
    for (key, line), (dkey, value) in zip(BAD_LINES, out.dead_letters, strict=True):
        letter = orjson.loads(value)
        assert dkey == key
        assert letter["reason"]
        assert letter["partition"] == 4
        assert dead_letter_line(letter) == line
    assert [orjson.loads(v)["offset"] for _k, v in out.dead_letters] == [100, 101]


MESSAGE = [
    b"<22>Mar 17 18:24:37 mail_logs: Info: Start MID 6 ICID 5",
    b"<22>Mar 17 18:24:37 mail_logs: Info: MID 6 ICID 5 From: <a@example.com>",
    b"<22>Mar 17 18:24:37 mail_logs: Info: MID 6 ICID 5 RID 0 To: <b@example.org>",
    b"<22>Mar 17 18:24:38 mail_logs: Info: Message finished MID 6 done",
]


def test_lines_without_a_host_belong_to_the_appliance_they_are_keyed_by() -> None:
    """A line whose framing names no host is filed under its Kafka key."""
    processor = PartitionProcessor(settings(), 0, clock=FakeClock())
    out = processor.process(raw_lines([(b"esa-bkk", line) for line in MESSAGE]))
    out2 = processor.tick(NOW + 5)
    records = collect([out, out2])
    assert {r["host"] for r in records.values()} == {"esa-bkk"}
    assert any(r["type"] == "message" and r["mid"] == 6 for r in records.values())


def test_a_finished_message_comes_out_with_its_finish_line_not_after_the_grace() -> None:
    """The default: a record is searchable within seconds of its finish, and the timer that
    ends the grace does not send it again when nothing changed."""
    clock = FakeClock()
    processor = PartitionProcessor(settings(grace=10.0), 0, clock=clock)
    out = processor.process(raw_lines([(b"esa1", line) for line in MESSAGE]))
    (record,) = [orjson.loads(v) for _k, v in out.messages]
    assert (record["mid"], record["complete"], record["status"]) == (6, True, "in_flight")
    assert record["revision"] == len(MESSAGE)
    clock.now += 12
    assert not processor.tick(clock.now).messages


def test_a_line_within_the_grace_after_the_finish_re_emits_the_record() -> None:
    """A line reordered behind the finish changes the provisional record: after the grace the
    record comes again, with a higher revision, equal to what waiting would have emitted."""
    late = b"<22>Mar 17 18:24:37 mail_logs: Info: MID 6 Subject 'late'"
    lines = [(b"esa1", line) for line in [*MESSAGE, late]]
    clock = FakeClock()
    early = PartitionProcessor(settings(grace=10.0), 0, clock=clock)
    first = early.process(raw_lines(lines))
    (provisional,) = [orjson.loads(v) for _k, v in first.messages]
    assert provisional["subject"] is None
    clock.now += 12
    (final,) = [orjson.loads(v) for _k, v in early.tick(clock.now).messages]
    waiting_clock = FakeClock()
    waiting = PartitionProcessor(settings(grace=10.0, emit_at_finish=False), 0,
                                 clock=waiting_clock)
    assert not waiting.process(raw_lines(lines)).messages
    waiting_clock.now += 12
    (waited,) = [orjson.loads(v) for _k, v in waiting.tick(waiting_clock.now).messages]
    assert final == waited
    assert final["subject"] == "late" and final["revision"] == provisional["revision"] + 1


def test_a_quiet_appliance_gets_its_records_after_the_grace_period() -> None:
    """The timer moves an idle appliance's log time on by wall time: records come after grace."""
    clock = FakeClock()
    processor = PartitionProcessor(settings(grace=10.0, emit_at_finish=False), 0, clock=clock)
    out = processor.process(raw_lines([(b"esa1", line) for line in MESSAGE]))
    assert not out.messages
    assert out.state  # the open message is in the table already
    clock.now += 5
    assert not processor.tick(clock.now).messages
    clock.now += 7
    late = processor.tick(clock.now)
    assert [orjson.loads(v)["mid"] for _k, v in late.messages] == [6]
    assert late.state  # the emission changed the state: it is saved too


FILE_LINES = [
    b"Mon Aug 10 09:44:11 2020 Info: Time offset from UTC: 3600 seconds",
    b"Mon Aug 10 10:00:00 2020 Info: New SMTP ICID 5 interface Data 1 (10.1.1.1) address "
    b"192.0.2.9 reverse dns host mx.example.net verified yes",
    b"Mon Aug 10 10:00:01 2020 Info: ICID 5 close",
]


@pytest.mark.parametrize("split", [1, 2, 3])
def test_file_time_offset_applies_across_a_restart(split: int) -> None:
    """A file's `Time offset from UTC` header dates later lines, even after a restore."""
    pairs = [(b"esa-file", line) for line in FILE_LINES]
    records = run_with_restart(pairs, split, 0)
    (record,) = records.values()
    assert record["started_at"] == "2020-08-10T09:00:00Z"


def test_file_context_is_saved_in_the_table() -> None:
    """The context line is a table entry of its own, under the appliance key."""
    processor = PartitionProcessor(settings(), 0, clock=FakeClock())
    out = processor.process(raw_lines([(b"esa-file", FILE_LINES[0])]))
    assert out.state[CONTEXT_PREFIX + b"esa-file"] == FILE_LINES[0]


@pytest.mark.parametrize(
    ("value", "lines"),
    [
        (b"one\ntwo", [b"one", b"two"]),
        (b"one\r\ntwo\r\n", [b"one", b"two"]),
        (b"one\n\n\ntwo\n", [b"one", b"two"]),
        (b"\n", []),
    ],
)
def test_a_value_with_several_lines_is_read_as_those_lines(value: bytes,
                                                           lines: list[bytes]) -> None:
    """A batching shipper's LF-separated value becomes its lines, key and offset kept."""
    got = split_value(b"esa1", value, NOW, 42)
    assert [line.value for line in got] == lines
    assert all((line.key, line.offset, line.timestamp) == (b"esa1", 42, NOW) for line in got)


def test_a_batched_value_gives_what_its_lines_give_one_by_one(
    samples: tuple[list[tuple[bytes, bytes]], dict[str, dict[str, Any]]],
) -> None:
    """Lines LF-joined per appliance into values give the same records, state and line count."""
    pairs, _offline = samples
    single = PartitionProcessor(settings(), 0, clock=FakeClock()).process(raw_lines(pairs))
    joined: list[RawLine] = []
    for i in range(0, len(pairs), 7):  # runs of one key joined, as a batching receiver would
        chunk = pairs[i:i + 7]
        for key in dict.fromkeys(k for k, _ in chunk):
            value = b"\r\n".join(line for k, line in chunk if k == key) + b"\n"
            joined.append(RawLine(key, value, NOW, len(joined)))
    batched = PartitionProcessor(settings(), 0, clock=FakeClock()).process(joined)
    assert batched.lines == single.lines == len(pairs)
    assert collect([batched]) == collect([single])
    assert batched.state == single.state
    assert len(batched.dead_letters) == len(single.dead_letters)


def test_a_bad_line_in_a_batched_value_is_a_dead_letter_of_its_own_bytes() -> None:
    """A dead letter from a batched value keeps that one line and the value's offset."""
    key, bad = BAD_LINES[0]
    value = MESSAGE[0] + b"\n" + bad + b"\n" + MESSAGE[1]
    out = PartitionProcessor(settings(), 2, clock=FakeClock()).process(
        [RawLine(key, value, NOW, 77)])
    assert out.lines == 3
    assert [dead_letter_line(orjson.loads(v)) for _k, v in out.dead_letters] == [bad]
    assert orjson.loads(out.dead_letters[0][1])["offset"] == 77
