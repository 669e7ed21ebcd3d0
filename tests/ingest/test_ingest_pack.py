"""Packing lines into Kafka values: lossless, in order, bounded, and read back by the worker as
the same lines."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.ingest.pack import group_by_key, pack_lines
from streams.worker.processor import split_value

# Lines as the framings deliver them: never empty; any bytes, CR and LF included (octet-counted
# TCP and UDP carry them), with a bias towards plain text so that packing happens.
_line = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.text(alphabet="abc <>:=\t", min_size=1, max_size=40).map(str.encode),
)


def _unpack(packed: list[tuple[bytes, int]]) -> list[bytes]:
    """The lines back: a value of one line is the line; a packed one splits on LF."""
    out: list[bytes] = []
    for value, count in packed:
        out += [value] if count == 1 else value.split(b"\n")
    return out


@given(st.lists(_line, max_size=60), st.integers(min_value=1, max_value=300))
def test_lines_come_back_in_order_and_values_respect_the_bound(
        lines: list[bytes], limit: int) -> None:
    """Any lines, any bound: splitting the values gives the lines back byte for byte in order;
    a value of n lines holds n - 1 LFs; only a value of one line may exceed the bound."""
    packed = pack_lines(lines, limit)
    assert _unpack(packed) == lines
    for value, count in packed:
        assert count >= 1
        if count > 1:
            assert value.count(b"\n") == count - 1
            assert len(value) <= limit
        else:
            assert value in lines


@given(st.lists(_line, min_size=1, max_size=60), st.integers(min_value=1, max_value=300))
def test_the_worker_reads_packed_values_as_the_lines(lines: list[bytes], limit: int) -> None:
    """What the stream worker makes of each value is what it would make of the lines sent one
    per record: lines with LF or a trailing CR travel alone, so its CR/empty-line handling never
    changes a packed line."""
    for value, count in pack_lines(lines, limit):
        if count > 1:
            assert [r.value for r in split_value(b"k", value, 0.0, 0)] == value.split(b"\n")
            assert all(not line.endswith(b"\r") for line in value.split(b"\n"))


@given(st.lists(st.binary(min_size=1, max_size=30).map(lambda b: b.replace(b"\n", b"x")
                                                      .replace(b"\r", b"y")), max_size=80),
       st.integers(min_value=1, max_value=200))
def test_packing_is_greedy(lines: list[bytes], limit: int) -> None:
    """Clean lines fill each value as far as the bound allows: the next value's first line would
    not have fitted into the one before."""
    packed = pack_lines(lines, limit)
    for (value, _), (following, count) in itertools.pairwise(packed):
        first = following if count == 1 else following.split(b"\n", 1)[0]
        assert len(value) + 1 + len(first) > limit


def test_one_value_when_everything_fits() -> None:
    """The common case: the lines of one read of one appliance become one value."""
    lines = [b"<22>Nov 19 09:16:38 esa1 mail_logs: Info: MID %d" % i for i in range(100)]
    assert pack_lines(lines, 65536) == [(b"\n".join(lines), 100)]


def test_lines_that_cannot_be_packed_go_alone() -> None:
    """A line holding LF, or ending with CR, is its own value; the others around it are packed,
    and a line longer than the bound is a value of its own."""
    lines = [b"a1", b"a2", b"two\nrows", b"a3", b"ends\r", b"a4", b"x" * 50, b"a5", b"a6"]
    assert pack_lines(lines, 10) == [
        (b"a1\na2", 2), (b"two\nrows", 1), (b"a3", 1), (b"ends\r", 1), (b"a4", 1),
        (b"x" * 50, 1), (b"a5\na6", 2)]


@pytest.mark.parametrize("limit", [1, 5, 6, 11, 1000])
def test_exact_bounds(limit: int) -> None:
    """A value of exactly ``limit`` bytes is allowed; one byte more is not."""
    lines = [b"aa", b"bb", b"cc", b"dd"]
    packed = pack_lines(lines, limit)
    assert _unpack(packed) == lines
    assert all(len(value) <= limit for value, count in packed if count > 1)
    expected = {1: 4, 5: 2, 6: 2, 11: 1, 1000: 1}[limit]
    assert len(packed) == expected


def test_group_by_key_keeps_each_appliances_order() -> None:
    """Interleaved appliances are split per key, each key's lines in their order; one key costs
    no regrouping (the same list comes back)."""
    lines = [b"a1", b"b1", b"a2", b"c1", b"b2", b"a3"]
    keys = [b"a", b"b", b"a", b"c", b"b", b"a"]
    assert group_by_key(lines, keys) == {b"a": [b"a1", b"a2", b"a3"], b"b": [b"b1", b"b2"],
                                         b"c": [b"c1"]}
    same = [b"x1", b"x2"]
    assert group_by_key(same, [b"x", b"x"])[b"x"] is same
    assert group_by_key([], []) == {}
