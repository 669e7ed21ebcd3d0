"""`esatrack replay` against the real local Kafka: every line arrives, counted, keyed right."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ingest.ingest_helpers import free_port, lines_by_key, read_topic

pytestmark = pytest.mark.integration


def _replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", "replay", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300, check=False)


def _mail_log(n: int) -> list[bytes]:
    head = [b"Begin Logfile", b"Version: 14.0.0-657 SN: 420D00000000-XYZ",
            b"Time offset from UTC: 25200 seconds"]
    body = [b"Wed Nov 19 09:16:%02d 2014 Info: MID %d ICID 5 RID 0 To: <u%d@example.org> "
            % (i % 60, i, i) + b"subject '\xe9t\xe9'" for i in range(n)]
    return head + body


@pytest.mark.parametrize("pack", ["65536", "0"])
def test_replay_files_plain_and_gzip_with_host(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path, pack: str
) -> None:
    """Two appliance files (one gzip) replayed with --host: counts match the files, each line
    arrives unchanged, in the files' order and keyed by the host given, empty lines skipped and
    counted. Packed (the default), values of several lines of one file; with
    ESATRACK_PRODUCER_PACK_BYTES 0, one record per line."""
    topic = new_topic(partitions=3)
    first, second = _mail_log(3000), _mail_log(1500)[3:]
    plain = tmp_path / "mail_logs.@20141119T091638.s"
    plain.write_bytes(b"\n".join(first) + b"\n\n")  # a trailing empty line
    zipped = tmp_path / "mail_logs.@20141119T101638.s.gz"
    zipped.write_bytes(gzip.compress(b"\r\n".join(second) + b"\r\n"))

    result = _replay(str(plain), str(zipped), "--host", "esa-file", "--topic", topic,
                     env={"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap,
                          "ESATRACK_PRODUCER_PACK_BYTES": pack})
    assert result.returncode == 0, result.stderr
    read = len(first) + 1 + len(second)
    total = len(first) + len(second)
    assert f"{read} lines read, 1 empty skipped, {total} acknowledged by Kafka" in result.stderr

    records = read_topic(kafka_bootstrap, topic, total, lines=True)
    assert lines_by_key(records) == {b"esa-file": first + second}
    assert {r.headers["transport"] for r in records} == {b"file"}
    by_file: dict[bytes, list[bytes]] = {}
    for record in records:
        by_file.setdefault(record.headers["peer"], []).extend(record.lines)
    assert by_file == {b"file:" + plain.name.encode(): first,
                       b"file:" + zipped.name.encode(): second}
    if pack == "0":
        assert [r.value for r in records] == first + second
    else:
        assert len(records) < total / 50
        assert all(len(r.value) <= 65536 for r in records)


def test_replay_syslog_capture_keys_by_host_field(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A syslog capture without --host is keyed by each line's host field; lines naming none
    fall back to ESATRACK_DEFAULT_HOST, and the command says how many did."""
    topic = new_topic()
    lines = [b"<22>Nov 19 09:16:38 esa1 mail_logs: Info: MID %d" % i for i in range(50)]
    lines += [b"Nov 19 09:16:39 esa2 mail_logs: Info: MID %d" % i for i in range(50)]
    lines += [b"<22>Nov 19 09:16:40 mail_logs: Info: MID %d hostless" % i for i in range(5)]
    capture = tmp_path / "capture.log"
    capture.write_bytes(b"\n".join(lines) + b"\n")
    result = _replay(str(capture), "--topic", topic, "--rate", "1000",
                     env={"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap,
                          "ESATRACK_DEFAULT_HOST": "esa-default"})
    assert result.returncode == 0, result.stderr
    assert "5 lines named no appliance" in result.stderr
    records = read_topic(kafka_bootstrap, topic, len(lines), lines=True)
    assert Counter((r.key, line) for r in records for line in r.lines) == Counter(
        [(b"esa1", line) for line in lines[:50]] + [(b"esa2", line) for line in lines[50:100]]
        + [(b"esa-default", line) for line in lines[100:]])


def test_replay_fails_when_kafka_does_not_acknowledge(tmp_path: Path) -> None:
    """With no Kafka to take the lines, replay exits non-zero and says how many are missing."""
    path = tmp_path / "mail_logs.s"
    path.write_bytes(b"\n".join(_mail_log(20)) + b"\n")
    result = _replay(str(path), "--host", "esa1",
                     env={"ESATRACK_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
                          "ESATRACK_PRODUCER_DELIVERY_TIMEOUT": "2"})
    assert result.returncode == 1
    assert "INCOMPLETE: 23 of 23 lines not acknowledged" in result.stderr


def test_replay_of_a_truncated_gzip_exits_non_zero(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A gzip file cut short is reported as unreadable and the replay exits 1, though the lines
    read before the cut are published and counted."""
    topic = new_topic()
    path = tmp_path / "mail_logs.s.gz"
    data = gzip.compress(b"\n".join(_mail_log(5000)) + b"\n")
    path.write_bytes(data[: len(data) // 2])
    result = _replay(str(path), "--host", "esa1", "--topic", topic,
                     env={"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap})
    assert result.returncode == 1, result.stderr
    assert f"error reading {path}" in result.stderr
    assert "1 unreadable files" in result.stderr


def test_packed_replay_of_interleaved_appliances_reassembles_the_file(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A capture of three appliances interleaved, replayed with a 2000-byte bound and a rate
    limit: each appliance's lines, reassembled from the values, are the file's lines of that
    appliance in the file's order; no value exceeds the bound (but the one line longer than it,
    which travels alone, as does a line ending with CR); the count is in lines."""
    topic = new_topic(partitions=3)
    hosts = [b"esa1", b"esa2", b"esa3"]
    lines = [b"<22>Nov 19 09:16:%02d %s mail_logs: Info: MID %d ICID 7 subject '\xe9'"
             % (i % 60, hosts[i % 3 if i % 7 else 0], i) for i in range(3000)]
    long_line = b"<22>Nov 19 09:16:38 esa2 mail_logs: Info: long " + b"z" * 2500
    ends_cr = b"<22>Nov 19 09:16:38 esa3 mail_logs: Info: ends with CR\r"
    lines[1000:1000] = [long_line, ends_cr]
    capture = tmp_path / "capture.log"
    # CRLF is a line end: a line that keeps its CR ends with CR CR LF in the file.
    capture.write_bytes(b"".join(line + (b"\r\n" if line == ends_cr else b"\n")
                                 for line in lines))
    result = _replay(str(capture), "--topic", topic, "--rate", "20000",
                     env={"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap,
                          "ESATRACK_PRODUCER_PACK_BYTES": "2000"})
    assert result.returncode == 0, result.stderr
    assert f"{len(lines)} lines read, 0 empty skipped, {len(lines)} acknowledged" in result.stderr
    records = read_topic(kafka_bootstrap, topic, len(lines), lines=True)
    assert lines_by_key(records) == {
        host: [line for line in lines if line.split(b" ")[3] == host] for host in hosts}
    assert all(len(r.value) <= 2000 for r in records if r.value != long_line)
    assert [r.value for r in records if ends_cr in r.value] == [ends_cr]
    assert len(records) < len(lines) / 10
