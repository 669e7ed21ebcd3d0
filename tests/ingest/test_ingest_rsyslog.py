"""A real third-party shipper: rsyslog with omkafka, configured by deploy/rsyslog, publishes the
appliances' lines to Kafka in exactly the form `esatrack receive` does (key = appliance, value =
the raw line). rsyslog is started by the test with its own work directory and unprivileged ports;
it must be installed beforehand (.ci/run does it): under CI=true a missing rsyslog fails the test.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.worker.codec import decode_record
from tests.ingest.ingest_helpers import free_port, read_topic
from tests.worker.worker_helpers import WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "rsyslog" / "esatrack-kafka.conf"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: install with apt-get install rsyslog rsyslog-kafka)",
                    pytrace=False)
    pytest.skip(f"{reason}: apt-get install rsyslog rsyslog-kafka")


def _rsyslogd() -> str:
    found = shutil.which("rsyslogd") or next(
        (p for p in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd") if os.access(p, os.X_OK)), None)
    if found is None:
        _missing("rsyslogd not installed")
    if not glob.glob("/usr/lib/*/rsyslog/omkafka.so") + glob.glob("/usr/lib/rsyslog/omkafka.so"):
        _missing("rsyslog's omkafka module not installed")
    assert found is not None
    return found


@pytest.fixture
def rsyslog(kafka_bootstrap: str, new_topic: Callable[..., str],
            tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """(topic, udp port, tcp port) of a running rsyslogd using deploy/rsyslog's configuration."""
    binary = _rsyslogd()
    topic = new_topic(partitions=3)
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
    main = tmp_path / "rsyslog.conf"
    main.write_text(f'global(workDirectory="{tmp_path}")\ninclude(file="{CONFIG}")\n')
    env = {**os.environ, "ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "ESATRACK_TOPIC_RAW": topic, "ESATRACK_RECEIVER_UDP_PORT": str(udp),
           "ESATRACK_RECEIVER_TCP_PORT": str(tcp)}
    log = (tmp_path / "rsyslogd.log").open("wb")
    proc = subprocess.Popen([binary, "-n", "-f", str(main), "-i", str(tmp_path / "rsyslogd.pid")],
                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail("rsyslogd exited:\n" + (tmp_path / "rsyslogd.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", tcp), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("rsyslogd did not listen:\n"
                                + (tmp_path / "rsyslogd.log").read_text())
                time.sleep(0.2)
        yield topic, udp, tcp
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_rsyslog_publishes_raw_lines_keyed_by_appliance(
    rsyslog: tuple[str, int, int], kafka_bootstrap: str
) -> None:
    """Lines sent to rsyslog over UDP and TCP (LF and octet-counted) arrive in Kafka unchanged
    (tabs, trailing spaces, non-UTF-8 bytes kept), keyed by the appliance in the header, or by
    the sender's address when the header names none."""
    topic, udp, tcp = rsyslog
    body = b"subject '\xe9t\xe9'\tend  "
    udp_lines = [b"<22>Nov 19 09:16:38 esa-udp mail_logs: Info: MID %d " % i + body
                 for i in range(50)]
    lf_lines = [b"<22>Nov  9 09:16:38 esa-tcp.example.com mail_logs: Info: MID %d " % i + body
                for i in range(100)]
    lf_lines.append(b"<22>Nov 19 09:16:38 mail_logs: Info: host-less line")
    octet_lines = [b"<165>1 2024-05-01T10:00:00.003Z esa-5424 mail_logs - - - Info: MID %d" % i
                   for i in range(50)]

    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i, line in enumerate(udp_lines):
        sender.sendto(line + b"\n", ("127.0.0.1", udp))
        if i % 10 == 9:
            time.sleep(0.01)
    sender.close()
    with socket.create_connection(("127.0.0.1", tcp)) as sock:
        sock.sendall(b"".join(line + b"\n" for line in lf_lines))
    with socket.create_connection(("127.0.0.1", tcp)) as sock:
        sock.sendall(b"".join(b"%d %s" % (len(line), line) for line in octet_lines))

    expected = Counter(
        [(b"esa-udp", line) for line in udp_lines]
        + [(b"esa-tcp.example.com", line) for line in lf_lines[:-1]]
        + [(b"127.0.0.1", lf_lines[-1])]
        + [(b"esa-5424", line) for line in octet_lines])
    records = read_topic(kafka_bootstrap, topic, sum(expected.values()), timeout=90)
    got = Counter((record.key, record.value) for record in records)
    assert got == expected


E2E_BODIES = [
    "New SMTP ICID 5 interface Data 1 (10.1.1.1) address 192.0.2.9 reverse dns host "
    "mx.example.net verified yes",
    "ICID 5 ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS 3.4 country Thailand",
    "Start MID 6 ICID 5",
    "MID 6 ICID 5 From: <a@example.com>",
    "MID 6 ICID 5 RID 0 To: <b@example.org>",
    "MID 6 Message-ID '<abc@example.com>'",
    "MID 6 Subject 'Hello from rsyslog'",
    "MID 6 ready 4306 bytes from <a@example.com>",
    "MID 6 queued for delivery",
    "New SMTP DCID 8 interface 10.1.1.2 address 198.51.100.25 port 25",
    "Delivery start DCID 8 MID 6 to RID [0]",
    "Message done DCID 8 MID 6 to RID [0]",
    "MID 6 RID [0] Response '2.0.0 Ok: queued as 4XyZ'",
    "Message finished MID 6 done",
    "ICID 5 close",
]


def test_rsyslog_lines_become_records_through_the_worker(
    rsyslog: tuple[str, int, int], kafka_bootstrap: str, new_topic: Callable[..., str],
    new_group: Callable[[], str], tmp_path: Path
) -> None:
    """A message's lines shipped by rsyslog are joined by a real `esatrack worker` into one
    message record for the appliance rsyslog keyed them by."""
    raw, _udp, tcp = rsyslog
    env = WorkerEnv(bootstrap=kafka_bootstrap, raw=raw, messages=new_topic(3),
                    connections=new_topic(3), unparsed=new_topic(3), group=new_group())
    worker = WorkerProcess(env, tmp_path / "state", tmp_path / "worker.log")
    try:
        worker.wait_ready(timeout=180)
        with socket.create_connection(("127.0.0.1", tcp)) as sock:
            sock.sendall(b"".join(f"<22>Nov 19 09:16:{38 + i % 20:02d} esa-e2e mail_logs: Info: "
                                  f"{body}\n".encode() for i, body in enumerate(E2E_BODIES)))
        worker.wait_lines(len(E2E_BODIES), timeout=120)
        records = read_topic(kafka_bootstrap, env.messages, 1, timeout=120)
        messages = [decode_record(record.value) for record in records]
        assert any(m["host"] == "esa-e2e" and m["mid"] == 6
                   and m["subject"] == "Hello from rsyslog" for m in messages), messages
    finally:
        worker.stop()
