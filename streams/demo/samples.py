"""Finding the sample logs and framing them for syslog over TCP (pure, no I/O but file reads)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from streams.errors import EsatrackError

SAMPLE_SUBDIRS = ("esa-text", "esa-cef")
"""The ESA mail-log samples; ``wsa/`` (web proxy) is not mail traffic."""


def default_samples_dir(start: Path) -> Path | None:
    """``shared/samples`` beside the checkout that holds ``start`` (walking up), if any."""
    for parent in [start, *start.parents]:
        candidate = parent / "shared" / "samples"
        if candidate.is_dir():
            return candidate
    return None


def sample_files(root: Path) -> list[Path]:
    """The ESA sample files under ``root``, in a stable order; an error if there are none."""
    files = sorted(p for sub in SAMPLE_SUBDIRS for p in (root / sub).glob("*.log"))
    if not files:
        raise EsatrackError(
            f"no ESA sample logs under {root} (expected {', '.join(SAMPLE_SUBDIRS)}/*.log); "
            "pass --samples DIR with the folder that holds them"
        )
    return files


def read_lines(files: Iterable[Path]) -> Iterator[bytes]:
    """Every non-empty line of the files, bytes as stored, without the line ending."""
    for path in files:
        with path.open("rb") as handle:
            for raw in handle:
                line = raw.rstrip(b"\r\n")
                if line.strip():
                    yield line


def octet_counted(line: bytes) -> bytes:
    """RFC 6587 octet-counting framing: ``<length> <line>``; safe for any bytes in the line."""
    return b"%d %s" % (len(line), line)
