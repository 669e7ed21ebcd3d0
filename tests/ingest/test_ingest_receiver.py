"""`esatrack receive` with the real local Kafka: every transport, unchanged, keyed right."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.ingest.ingest_helpers import ReceiverProcess, free_port, make_cert, read_topic

pytestmark = pytest.mark.integration


def _lines(tag: str, host: str | None, n: int) -> list[bytes]:
    head = f"<22>Nov 19 09:16:38 {host} mail_logs" if host else "<22>Nov 19 09:16:38 mail_logs"
    return [f"{head}: Info: MID {i} ICID 5 {tag} ".encode() + b"subj '\xe9\xff'\tend"
            for i in range(n)]


def _send_stream(sock: socket.socket, payload: bytes) -> None:
    for start in range(0, len(payload), 777):  # odd-sized writes: frames straddle reads
        sock.sendall(payload[start:start + 777])


def _close_tls(sock: ssl.SSLSocket) -> None:
    """End TLS with close_notify both ways, as a well-behaved sender does. Closing with unread
    bytes from the server (TLS 1.3 session tickets) would make the kernel send RST, and an RST
    discards what the server has not read yet: data lost before any program could see it."""
    sock.settimeout(10)
    sock.unwrap()


def test_every_transport_arrives_unchanged_and_keyed(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """UDP, TCP (LF and octet-counted) and TLS lines reach Kafka byte for byte, keyed by appliance
    (or by the peer address when the header names none), with receive time, peer and transport."""
    topic = new_topic(partitions=3)
    cert, key = make_cert(tmp_path)
    metrics_port = free_port()
    rx = ReceiverProcess(
        {"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap, "ESATRACK_RECEIVER_BIND": "127.0.0.1"},
        ["--topic", topic, "--udp-port", str(free_port(socket.SOCK_DGRAM)),
         "--tcp-port", str(free_port()), "--tls-port", str(free_port()),
         "--tls-cert", str(cert), "--tls-key", str(key), "--spool-dir", str(tmp_path / "spool"),
         "--metrics-port", str(metrics_port)])
    try:
        udp = _lines("udp", "esa-udp", 150) + _lines("udp-nohost", None, 10)
        lf = [*_lines("lf", "esa-lf.example.com", 300), b"<22>Nov 19 09:16:38 esa-lf x: inner\rCR "]
        octet = [*_lines("octet", "esa-octet", 300), b"<22>Nov 19 09:16:38 esa-octet x: two\nrows"]
        tls_lines = _lines("tls", "esa-tls", 200)

        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i, line in enumerate(udp):
            sender.sendto(line, ("127.0.0.1", rx.udp))
            if i % 20 == 19:
                time.sleep(0.005)  # keep within the loopback socket buffer
        sender.close()
        with socket.create_connection(("127.0.0.1", rx.tcp)) as sock:
            _send_stream(sock, b"".join(line + b"\n" for line in lf))
        with socket.create_connection(("127.0.0.1", rx.tcp)) as sock:
            _send_stream(sock, b"".join(b"%d %s" % (len(line), line) for line in octet))
        context = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", rx.tls)) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            _send_stream(sock, b"".join(line + b"\r\n" for line in tls_lines))
            _close_tls(sock)

        expected = {
            **dict.fromkeys(udp[:150], (b"esa-udp", b"udp")),
            **dict.fromkeys(udp[150:], (b"127.0.0.1", b"udp")),
            **dict.fromkeys(lf[:-1], (b"esa-lf.example.com", b"tcp")),
            lf[-1]: (b"esa-lf", b"tcp"),
            **dict.fromkeys(octet, (b"esa-octet", b"tcp")),
            **dict.fromkeys(tls_lines, (b"esa-tls", b"tls")),
        }
        records = read_topic(kafka_bootstrap, topic, len(expected))
        counts = Counter(record.value for record in records)
        assert set(counts) == set(expected), "lines lost or changed"
        assert max(counts.values()) == 1, "duplicates in a run without failures"
        now_ms = time.time() * 1000
        for record in records:
            appliance, transport = expected[record.value]
            assert (record.key, record.headers["transport"]) == (appliance, transport)
            assert record.headers["peer"].startswith(b"127.0.0.1:")
            assert abs(int(record.headers["received_ms"]) - now_ms) < 120_000

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        assert b'esatrack_ingest_lines_total{appliance="esa-tls",transport="tls"} 200.0' in metrics
        assert b'esatrack_ingest_lines_total{appliance="esa-udp",transport="udp"} 150.0' in metrics
        assert f"esatrack_ingest_published_total {len(expected)}.0".encode() in metrics
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz") as reply:
            health = orjson.loads(reply.read())
        assert health["kafka"] == "up"
        assert health["published"] == len(expected)
    finally:
        output = rx.stop() if rx.proc.poll() is None else ""
        rx.kill()
    assert f"{len(expected)} lines in, {len(expected)} published" in output


def test_overlong_lines_are_dropped_and_counted(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A line beyond ESATRACK_MAX_LINE_BYTES is not published, is counted, and the next line is."""
    topic = new_topic()
    metrics_port = free_port()
    rx = ReceiverProcess(
        {"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap, "ESATRACK_RECEIVER_BIND": "127.0.0.1",
         "ESATRACK_MAX_LINE_BYTES": "1024"},
        ["--topic", topic, "--udp-port", "0", "--tcp-port", str(free_port()),
         "--spool-dir", str(tmp_path / "spool"), "--metrics-port", str(metrics_port)])
    try:
        good = [b"<22>Nov 19 09:16:38 esa1 mail_logs: Info: before",
                b"<22>Nov 19 09:16:38 esa1 mail_logs: Info: after"]
        with socket.create_connection(("127.0.0.1", rx.tcp)) as sock:
            sock.sendall(good[0] + b"\n" + b"<22>" + b"x" * 5000 + b"\n" + good[1] + b"\n")
        records = read_topic(kafka_bootstrap, topic, 2)
        assert [r.value for r in records] == good
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        assert b'esatrack_ingest_dropped_total{reason="overlong"} 1.0' in metrics
    finally:
        rx.stop()
        rx.kill()


def test_tls_client_certificates_when_a_client_ca_is_set(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """With ESATRACK_RECEIVER_TLS_CLIENT_CA set, a peer without a certificate signed by that CA
    is refused and sends nothing; a peer with one gets its lines published."""
    topic = new_topic()
    server_dir, client_dir = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client_dir.mkdir()
    cert, key = make_cert(server_dir)
    client_cert, client_key = make_cert(client_dir)
    rx = ReceiverProcess(
        {"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap, "ESATRACK_RECEIVER_BIND": "127.0.0.1",
         "ESATRACK_RECEIVER_TLS_CLIENT_CA": str(client_cert)},
        ["--topic", topic, "--udp-port", "0", "--tcp-port", "0", "--tls-port", str(free_port()),
         "--tls-cert", str(cert), "--tls-key", str(key), "--spool-dir", str(tmp_path / "spool"),
         "--metrics-port", "0"])
    try:
        refused = b"<22>Nov 19 09:16:38 esa-anon mail_logs: Info: no certificate"
        accepted = b"<22>Nov 19 09:16:38 esa-mtls mail_logs: Info: with certificate"
        anonymous = ssl.create_default_context(cafile=str(cert))
        # Refused at the handshake (TLS 1.2) or just after it (TLS 1.3: the server's alert or
        # close comes with the next read): either way the line must never reach Kafka.
        with contextlib.suppress(ssl.SSLError, ConnectionError), \
                socket.create_connection(("127.0.0.1", rx.tls), timeout=10) as raw, \
                anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(refused + b"\n")
            assert sock.recv(1) == b""
        mutual = ssl.create_default_context(cafile=str(cert))
        mutual.load_cert_chain(str(client_cert), str(client_key))
        with socket.create_connection(("127.0.0.1", rx.tls)) as raw, \
                mutual.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(accepted + b"\n")
            _close_tls(sock)
        records = read_topic(kafka_bootstrap, topic, 1, settle=2.0)
        assert [(r.key, r.value) for r in records] == [(b"esa-mtls", accepted)]
    finally:
        rx.stop()
        rx.kill()
