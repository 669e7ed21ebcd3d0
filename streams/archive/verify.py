"""Recompute a raw chain and find its first broken or missing link, pure: no I/O."""

from __future__ import annotations

import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from streams.archive.chain import genesis_hash, line_bytes, link_hash

ProblemKind = Literal["missing", "altered", "relinked", "duplicate", "malformed"]


@dataclass(frozen=True)
class Problem:
    """The first defect of a chain: which link, what kind, and where the line came from."""

    seq: int
    kind: ProblemKind
    message: str


@dataclass(frozen=True)
class ChainReport:
    """The result of verifying one chain (one appliance, one day)."""

    host: str
    day: str
    links: int
    """Documents verified (one per ``esa.raw`` record)."""
    head_hash: str
    problem: Problem | None
    lines: int = 0
    """Log lines in the verified documents: a record may hold several, LF-separated."""

    @property
    def intact(self) -> bool:
        return self.problem is None


def _where(doc: dict[str, Any]) -> str:
    return f"partition {doc.get('partition')} offset {doc.get('offset')}"


def verify_chain(host: str, day: str, docs: Iterable[dict[str, Any]]) -> ChainReport:
    """Walk ``docs`` (sorted by ``seq`` ascending) and stop at the first defect.

    Missing links are gaps in ``seq`` (a deleted document); an altered line no longer hashes to
    the stored ``hash``; a relinked document has a ``prev_hash`` that is not its predecessor's.
    """
    prev_hash = genesis_hash(host, day)
    expected = 1
    links = lines = 0
    for doc in docs:
        seq = doc.get("seq")
        if not isinstance(seq, int):
            return ChainReport(host, day, links, prev_hash, lines=lines, problem=Problem(
                expected, "malformed", f"document at {_where(doc)} has no sequence number"))
        if seq < expected:
            return ChainReport(host, day, links, prev_hash, lines=lines, problem=Problem(
                seq, "duplicate", f"link {seq} appears twice (again at {_where(doc)}): "
                                  "the chain forked"))
        if seq > expected:
            gap = f"link {expected}" if seq == expected + 1 else f"links {expected}..{seq - 1}"
            return ChainReport(host, day, links, prev_hash, lines=lines, problem=Problem(
                expected, "missing", f"{gap} missing (deleted?) before link {seq} at "
                                     f"{_where(doc)}"))
        if doc.get("prev_hash") != prev_hash:
            return ChainReport(host, day, links, prev_hash, lines=lines, problem=Problem(
                seq, "relinked", f"link {seq} at {_where(doc)} does not point to link "
                                 f"{seq - 1} (prev_hash differs)"))
        try:
            line = line_bytes(doc)
        except (KeyError, ValueError, binascii.Error):
            return ChainReport(host, day, links, prev_hash, lines=lines, problem=Problem(
                seq, "malformed", f"link {seq} at {_where(doc)} has no readable line"))
        if "line_b64" in doc and line.decode("utf-8", errors="replace") != doc.get("line"):
            return ChainReport(host, day, links, prev_hash, lines=lines, problem=Problem(
                seq, "altered", f"link {seq} at {_where(doc)}: line text differs from its "
                                "exact bytes"))
        if link_hash(prev_hash, line) != doc.get("hash"):
            return ChainReport(host, day, links, prev_hash, lines=lines, problem=Problem(
                seq, "altered", f"link {seq} at {_where(doc)}: the line does not hash to the "
                                "stored hash (line or hash edited)"))
        prev_hash = str(doc["hash"])
        expected += 1
        links += 1
        lines += line.count(b"\n") + 1
    return ChainReport(host, day, links, prev_hash, None, lines)
