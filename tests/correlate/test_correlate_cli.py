"""``esatrack correlate``: files (plain, .gz, stdin) in, one valid record per line out."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.cli import main
from tests.correlate.correlate_support import frame, validate
from tests.correlate.test_correlate_scenarios import DELIVERED

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[list[dict[str, Any]], str]:
    assert main(["correlate", *argv]) == 0
    captured = capsys.readouterr()
    return [orjson.loads(line) for line in captured.out.splitlines()], captured.err


def test_plain_and_gzip_files_give_the_final_revision_of_each_record(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log file and its .gz twin give the same records, one line per record id."""
    data = b"\n".join(frame(line) for line in DELIVERED) + b"\n"
    plain = tmp_path / "mail.log"
    plain.write_bytes(data)
    packed = tmp_path / "mail.log.gz"
    packed.write_bytes(gzip.compress(data))
    records, err = _run(capsys, "--year", "2024", str(plain))
    assert [r["type"] for r in records].count("message") == 1
    assert len({r["id"] for r in records}) == len(records) == 2
    message = next(r for r in records if r["type"] == "message")
    assert message["status"] == "delivered" and message["complete"] is True
    assert f"{len(DELIVERED)} lines" in err and "2 records" in err
    again, _ = _run(capsys, "--year", "2024", str(packed))
    assert again == records


def test_stdin_and_all_revisions(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """'-' reads stdin; --all-revisions writes every emission, revisions increasing."""
    data = b"\n".join(frame(line) for line in DELIVERED) + b"\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    records, _ = _run(capsys, "--year", "2024", "--grace", "0", "--all-revisions", "-")
    revisions = [r["revision"] for r in records if r["type"] == "message"]
    assert len(revisions) > 1 and revisions == sorted(revisions)


def test_a_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist stops with exit code 2 and says what to give instead."""
    assert main(["correlate", "/nonexistent/mail.log"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not beside the repository")
def test_the_shared_samples_correlate_into_valid_records(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Every public sample log runs through without error; every record is valid."""
    files = sorted(str(p) for p in SAMPLES.rglob("*.log"))
    records, err = _run(capsys, "--year", "2024", *files)
    assert records, err
    for record in records:
        validate(record)
    assert "lines" in err
