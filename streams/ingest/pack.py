"""Packing lines of one appliance into Kafka values: LF-separated, at most a byte bound each.

The stream worker pays a fixed cost per Kafka record (~70 us in faust) and reads a value holding
several LF-separated lines as those lines, so the receiver and replay pack the lines they have in
hand (never waiting for more) into values of at most ``limit`` bytes:

- lines are grouped by Kafka key (appliance), keeping their order within each key;
- a value holds whole lines joined with ``b"\\n"``, so for a value of ``n`` lines
  ``n == value.count(b"\\n") + 1`` and ``value.split(b"\\n")`` gives the lines back, byte for
  byte, in order;
- a line that could not be told apart once packed goes alone, as its own value of one line: one
  that contains LF (octet-counted TCP and UDP carry them), and one that ends with CR (the worker
  drops a CR before each LF of a packed value, as a CRLF shipper's trailer). Alone, such a line
  reaches the worker exactly as it would without packing;
- a line longer than ``limit`` is a value of its own.

Pure: bytes in, values out. The common case (one appliance, clean lines) is a single ``join``
and a few C scans, whatever the number of lines.
"""

from __future__ import annotations

Packed = list[tuple[bytes, int]]
"""Values with the number of lines each holds."""


def group_by_key(lines: list[bytes], keys: list[bytes]) -> dict[bytes, list[bytes]]:
    """The lines of each key, in their order; keys in the order they first appear."""
    first = keys[0] if keys else b""
    if keys.count(first) == len(keys):  # one appliance: the common case, no per-line work
        return {first: lines} if lines else {}
    groups: dict[bytes, list[bytes]] = {}
    for key, line in zip(keys, lines, strict=True):
        group = groups.get(key)
        if group is None:
            groups[key] = [line]
        else:
            group.append(line)
    return groups


def _clean(joined: bytes, count: int) -> bool:
    """True when none of the ``count`` lines joined in ``joined`` holds LF or ends with CR."""
    return (joined.count(b"\n") == count - 1 and b"\r\n" not in joined
            and not joined.endswith(b"\r"))


def pack_lines(lines: list[bytes], limit: int) -> Packed:
    """``lines`` (non-empty, one key) as values of at most ``limit`` bytes, greedily, in order."""
    if len(lines) < 2:  # a line alone is a value of one line, whatever it holds (UDP: always)
        return [(lines[0], 1)] if lines else []
    joined = b"\n".join(lines)
    if not _clean(joined, len(lines)):
        return _pack_mixed(lines, limit)
    end = len(joined)
    if end <= limit:
        return [(joined, len(lines))]
    out: Packed = []
    start = 0
    while end - start > limit:
        cut = joined.rfind(b"\n", start, start + limit + 1)
        if cut < 0:  # the next line alone is longer than the bound: it goes alone
            cut = joined.find(b"\n", start + limit)
            if cut < 0:
                break
        value = joined[start:cut]
        out.append((value, value.count(b"\n") + 1))
        start = cut + 1
    value = joined[start:] if start else joined
    out.append((value, value.count(b"\n") + 1))
    return out


def _pack_mixed(lines: list[bytes], limit: int) -> Packed:
    """Lines some of which must go alone: pack the clean stretches between them."""
    out: Packed = []
    clean: list[bytes] = []
    for line in lines:
        if b"\n" in line or line.endswith(b"\r"):
            if clean:
                out += pack_lines(clean, limit)
                clean = []
            out.append((line, 1))
        else:
            clean.append(line)
    if clean:
        out += pack_lines(clean, limit)
    return out
