"""The on-disk spool: a bounded FIFO that survives restarts and torn writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.ingest.metrics import MAX_APPLIANCES, OTHER, IngestCounters
from streams.ingest.spool import Spool, SpoolRecord, decode, encode


def _rec(i: int, size: int = 10) -> SpoolRecord:
    return SpoolRecord(b"<22>line %d " % i + b"x" * size, b"esa%d" % (i % 3), 1_700_000_000_000 + i,
                       b"192.0.2.1:514", b"udp")


def _drain_all(spool: Spool) -> list[SpoolRecord]:
    out: list[SpoolRecord] = []
    while (segment := spool.take()) is not None:
        while not segment.exhausted:
            out += segment.read(7)
        spool.release(segment)
    return out


@given(st.builds(SpoolRecord, st.binary(max_size=200), st.binary(max_size=100),
                 st.integers(min_value=0, max_value=2**62), st.binary(max_size=60),
                 st.binary(max_size=10), st.integers(min_value=1, max_value=2**32 - 1)))
def test_encode_decode_roundtrip(record: SpoolRecord) -> None:
    """Any record, with its line count, comes back from its encoding unchanged."""
    assert decode(encode(record)[8:]) == record


def _packed(i: int, lines: int) -> SpoolRecord:
    value = b"\n".join(b"<22>line %d.%d" % (i, n) for n in range(lines))
    return SpoolRecord(value, b"esa1", 1_700_000_000_000 + i, b"192.0.2.1:514", b"tcp", lines)


def test_packed_records_keep_their_values_and_line_counts(tmp_path: Path) -> None:
    """Packed values go through the spool unchanged, with their line counts, across a restart."""
    spool = Spool(tmp_path, max_bytes=10_000_000, segment_bytes=2000)
    records = [_packed(i, 1 + i % 40) for i in range(60)]
    for record in records:
        assert spool.append(record)
    spool.close()
    assert _drain_all(Spool(tmp_path, max_bytes=10_000_000)) == records


def test_read_stops_at_a_line_budget(tmp_path: Path) -> None:
    """``max_lines`` stops a read once the records hold that many lines (always at least one
    record, so a record bigger than the budget still comes out)."""
    spool = Spool(tmp_path, max_bytes=1_000_000)
    records = [_packed(i, n) for i, n in enumerate([50, 30, 1, 1, 200, 5])]
    for record in records:
        spool.append(record)
    segment = spool.take()
    assert segment is not None
    assert segment.read(100, max_lines=60) == records[:2]
    assert segment.read(100, max_lines=2) == records[2:4]
    assert segment.read(100, max_lines=10) == records[4:5]
    assert segment.read(1, max_lines=1000) == records[5:]
    assert segment.read(100, max_lines=1000) == []
    assert segment.exhausted


def test_fifo_across_segments(tmp_path: Path) -> None:
    """Records come out in the order they went in, across many segments, and the spool empties."""
    spool = Spool(tmp_path, max_bytes=10_000_000, segment_bytes=500)
    records = [_rec(i) for i in range(200)]
    for record in records:
        assert spool.append(record)
    assert len(list(tmp_path.glob("*.spool"))) > 5
    assert _drain_all(spool) == records
    assert not spool
    assert spool.bytes_used == 0
    assert list(tmp_path.glob("*.spool")) == []


def test_full_spool_refuses_and_keeps_what_it_has(tmp_path: Path) -> None:
    """Past the cap, append says no (the caller counts the drop) and nothing is overwritten."""
    spool = Spool(tmp_path, max_bytes=65536, segment_bytes=4096)
    accepted = [r for r in (_rec(i, size=500) for i in range(500)) if spool.append(r)]
    assert 0 < len(accepted) < 500
    assert spool.bytes_used <= 65536
    assert _drain_all(spool) == accepted


def test_survives_restart(tmp_path: Path) -> None:
    """What was appended and closed is read back by a new Spool on the same directory."""
    spool = Spool(tmp_path, max_bytes=1_000_000, segment_bytes=1000)
    records = [_rec(i) for i in range(50)]
    for record in records:
        spool.append(record)
    spool.close()
    again = Spool(tmp_path, max_bytes=1_000_000, segment_bytes=1000)
    assert again.bytes_used > 0
    more = [_rec(i) for i in range(50, 60)]
    for record in more:
        again.append(record)
    assert _drain_all(again) == records + more


def test_unreleased_segment_is_read_again(tmp_path: Path) -> None:
    """A segment taken but not released (crash while draining) comes back after a restart."""
    spool = Spool(tmp_path, max_bytes=1_000_000)
    records = [_rec(i) for i in range(5)]
    for record in records:
        spool.append(record)
    segment = spool.take()
    assert segment is not None
    assert segment.read(100) == records
    segment.close()  # crash: never released
    assert _drain_all(Spool(tmp_path, max_bytes=1_000_000)) == records


@pytest.mark.parametrize(("torn", "lines"), [(_rec(99), 1), (_packed(99, 37), 37)])
def test_torn_tail_is_counted_not_fatal(tmp_path: Path, torn: SpoolRecord, lines: int) -> None:
    """A half-written last record is skipped and counted, in records and in the lines its
    header claims; the records before it survive."""
    spool = Spool(tmp_path, max_bytes=1_000_000)
    records = [_rec(i) for i in range(5)]
    for record in records:
        spool.append(record)
    spool.close()
    (path,) = tmp_path.glob("*.spool")
    with path.open("ab") as handle:
        handle.write(encode(torn)[:-3])
    again = Spool(tmp_path, max_bytes=1_000_000)
    assert _drain_all(again) == records
    assert again.corrupt_records == 1
    assert again.corrupt_lines == lines


@pytest.mark.parametrize("damage_at", [0, 8, 16, 20])
def test_corrupt_bytes_stop_the_segment(tmp_path: Path, damage_at: int) -> None:
    """A flipped byte fails the CRC: reading stops there, counted, and nothing bogus comes out;
    the lines counted lost stay within what a record of that size can hold (16: the flipped
    byte is in the line count itself)."""
    spool = Spool(tmp_path, max_bytes=1_000_000)
    records = [_rec(i) for i in range(3)]
    for record in records:
        spool.append(record)
    spool.close()
    (path,) = tmp_path.glob("*.spool")
    data = bytearray(path.read_bytes())
    second = len(encode(records[0]))
    data[second + damage_at] ^= 0xFF
    path.write_bytes(bytes(data))
    again = Spool(tmp_path, max_bytes=1_000_000)
    assert _drain_all(again) == records[:1]
    assert again.corrupt_records == 1
    if damage_at == 16:
        assert 1 < again.corrupt_lines <= len(records[1].value)
    else:
        assert again.corrupt_lines == 1


def test_give_back_rereads(tmp_path: Path) -> None:
    """A segment given back is read again from its start."""
    spool = Spool(tmp_path, max_bytes=1_000_000)
    records = [_rec(i) for i in range(4)]
    for record in records:
        spool.append(record)
    segment = spool.take()
    assert segment is not None
    assert segment.read(2) == records[:2]
    spool.give_back(segment)
    assert _drain_all(spool) == records


def test_force_goes_past_the_cap(tmp_path: Path) -> None:
    """``force`` writes even when full (records moved within the spool are not lost)."""
    spool = Spool(tmp_path, max_bytes=65536, segment_bytes=4096)
    while spool.append(_rec(0, size=1000)):
        pass
    assert not spool.append(_rec(1, size=1000))
    assert spool.append(_rec(1, size=1000), force=True)
    assert spool.bytes_used > 65536


def test_appliance_labels_are_capped() -> None:
    """Past MAX_APPLIANCES distinct names, lines are counted under `_other`, none are lost."""
    counters = IngestCounters()
    for i in range(MAX_APPLIANCES + 50):
        counters.add_in("udp", {b"esa%d" % i: [1, 10]})
    assert len(counters.lines) == MAX_APPLIANCES + 1
    assert counters.lines[("udp", OTHER)] == 50
    assert counters.total_in() == MAX_APPLIANCES + 50
    assert sum(counters.sizes.values()) == 10 * (MAX_APPLIANCES + 50)
