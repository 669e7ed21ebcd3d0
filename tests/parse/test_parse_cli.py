"""``esatrack parse``: JSON Lines out, one event per input line; --stats counts that add up."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import orjson
import pytest

from streams.cli import main

LINES = [
    b"<22>Mar 17 18:24:37 esa1 mail_logs: Info: Start MID 6 ICID 5",
    b"<22>Mar 17 18:24:37 esa1 mail_logs: Info: MID 6 Subject '\xe9t\xe9'",
    b"1340875127.391 108 172.17.21.78 TCP_MISS/200 2545 GET https://example.dk/ - DIRECT/x -",
    b"",
    b"Wed Nov 19 09:16:38 2014 Info: Message finished MID 6 done",
]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "mail.log"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    return path


def test_jsonl_has_one_event_per_line(log_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
                                      ) -> None:
    """Each input line gives one JSON object with its kind, ids and data, in order."""
    assert main(["parse", "--host", "esa9", "--year", "2024", str(log_file)]) == 0
    out = capsysbinary.readouterr().out.splitlines()
    events = [orjson.loads(line) for line in out]
    assert [e["kind"] for e in events] == ["msg_start", "msg_subject", "unknown", "unknown",
                                           "msg_finished"]
    assert events[0]["host"] == "esa1" and events[0]["mid"] == 6 and events[0]["icid"] == 5
    assert events[4]["host"] == "esa9"  # file format: the --host default
    assert events[1]["raw"].encode("latin-1") == LINES[1]  # undecodable bytes kept
    assert events[2]["data"]["reason"].startswith("wsa access log")


def test_stats_adds_up(log_file: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """--stats prints one object where parsed + unknown == lines and kinds sum to lines."""
    assert main(["parse", "--stats", str(log_file)]) == 0
    stats = orjson.loads(capsysbinary.readouterr().out)
    assert stats["lines"] == len(LINES)
    assert stats["parsed"] + stats["unknown"] == stats["lines"]
    assert sum(stats["kinds"].values()) == stats["lines"]
    assert stats["unknown"] == 2


def test_gzip_and_stdin(tmp_path: Path, log_file: Path, monkeypatch: pytest.MonkeyPatch,
                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """.gz files are decompressed and '-' reads standard input, both counted together."""
    packed = tmp_path / "mail.log.gz"
    packed.write_bytes(gzip.compress(log_file.read_bytes()))
    fake_stdin = io.TextIOWrapper(io.BytesIO(log_file.read_bytes()))
    monkeypatch.setattr(sys, "stdin", fake_stdin)
    assert main(["parse", "--stats", str(packed), "-"]) == 0
    assert orjson.loads(capsysbinary.readouterr().out)["lines"] == 2 * len(LINES)


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    """A missing file stops with exit code 2 and a message naming the file and what to do."""
    code = main(["parse", str(tmp_path / "nope.log")])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope.log: no such file" in err


def test_unknown_zone_is_a_clear_error(log_file: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    """--tz with a zone that does not exist stops with exit code 2 and an example zone."""
    code = main(["parse", "--tz", "Mars/Olympus", str(log_file)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Asia/Bangkok" in err
