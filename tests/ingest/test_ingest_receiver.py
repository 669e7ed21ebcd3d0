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

from tests.ingest.ingest_helpers import (
    ReceiverProcess,
    free_port,
    lines_by_key,
    make_cert,
    read_topic,
)

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


@pytest.mark.parametrize("pack", ["65536", "0"])
def test_every_transport_arrives_unchanged_and_keyed(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path, pack: str
) -> None:
    """UDP, TCP (LF and octet-counted) and TLS lines reach Kafka byte for byte, in order per
    appliance, keyed by appliance (or by the peer address when the header names none), with
    receive time, peer and transport. Packed (the default), a value split on LF gives its lines
    back, and a line holding LF or ending with CR arrives alone; with ESATRACK_PRODUCER_PACK_BYTES
    0 every record is one line. Every count the receiver shows is in lines."""
    topic = new_topic(partitions=3)
    cert, key = make_cert(tmp_path)
    metrics_port = free_port()
    rx = ReceiverProcess(
        {"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap, "ESATRACK_RECEIVER_BIND": "127.0.0.1",
         "ESATRACK_PRODUCER_PACK_BYTES": pack},
        ["--topic", topic, "--udp-port", str(free_port(socket.SOCK_DGRAM)),
         "--tcp-port", str(free_port()), "--tls-port", str(free_port()),
         "--tls-cert", str(cert), "--tls-key", str(key), "--spool-dir", str(tmp_path / "spool"),
         "--metrics-port", str(metrics_port)])
    try:
        udp = _lines("udp", "esa-udp", 150) + _lines("udp-nohost", None, 10)
        lf = [*_lines("lf", "esa-lf.example.com", 300), b"<22>Nov 19 09:16:38 esa-lf x: inner\rCR "]
        two_rows = b"<22>Nov 19 09:16:38 esa-octet x: two\nrows"
        ends_cr = b"<22>Nov 19 09:16:38 esa-octet x: ends with CR\r"
        octet = [*_lines("octet", "esa-octet", 150), two_rows, *_lines("octet2", "esa-octet", 150),
                 ends_cr, *_lines("octet3", "esa-octet", 20)]
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

        expected = {  # appliance: (transport, its lines in the order sent)
            b"esa-udp": (b"udp", udp[:150]),
            b"127.0.0.1": (b"udp", udp[150:]),
            b"esa-lf.example.com": (b"tcp", lf[:-1]),
            b"esa-lf": (b"tcp", lf[-1:]),
            b"esa-octet": (b"tcp", octet),
            b"esa-tls": (b"tls", tls_lines),
        }
        total = sum(len(sent) for _transport, sent in expected.values())
        # two_rows holds an LF: split blindly, it would count twice.
        records = read_topic(kafka_bootstrap, topic, total + 1, lines=True)
        got: dict[bytes | None, list[bytes]] = {}
        for record in records:
            got.setdefault(record.key, []).extend(
                [record.value] if record.value == two_rows else record.lines)
        assert set(got) == set(expected)
        for appliance, (_transport, sent) in expected.items():
            if appliance in (b"esa-udp", b"127.0.0.1"):  # datagrams: no order to keep
                assert sorted(got[appliance]) == sorted(sent), appliance
            else:
                assert got[appliance] == sent, f"{appliance!r}: lines lost, changed or reordered"
        assert [r for r in records if two_rows in r.value] == [
            r for r in records if r.value == two_rows], "a line holding LF must travel alone"
        assert [r.value for r in records if ends_cr in r.value] == [ends_cr]
        now_ms = time.time() * 1000
        for record in records:
            assert record.key is not None
            assert record.headers["transport"] == expected[record.key][0]
            assert record.headers["peer"].startswith(b"127.0.0.1:")
            assert abs(int(record.headers["received_ms"]) - now_ms) < 120_000
        per_record = Counter(len(record.lines) for record in records if record.value != two_rows)
        if pack == "0":
            assert per_record == {1: total - 1}, "one line per record without packing"
        else:
            assert max(per_record) > 1, "the TCP and TLS lines were not packed"
            assert len(records) < total
            udp_records = [r for r in records if r.key == b"esa-udp"]
            assert len(udp_records) < 150, "the default linger packs datagrams too"

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        assert b'esatrack_ingest_lines_total{appliance="esa-tls",transport="tls"} 200.0' in metrics
        assert b'esatrack_ingest_lines_total{appliance="esa-udp",transport="udp"} 150.0' in metrics
        assert (f'esatrack_ingest_lines_total{{appliance="esa-octet",transport="tcp"}} '
                f"{len(octet)}.0").encode() in metrics
        assert f"esatrack_ingest_published_total {total}.0".encode() in metrics
        assert b"esatrack_ingest_producer_queue 0.0" in metrics
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz") as reply:
            health = orjson.loads(reply.read())
        assert health["kafka"] == "up"
        assert health["published"] == health["lines_in"] == total
    finally:
        output = rx.stop() if rx.proc.poll() is None else ""
        rx.kill()
    assert f"{total} lines in, {total} published" in output


def test_packed_values_are_bounded_and_kept_per_appliance(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    """With a 1000-byte bound, lines of two appliances interleaved on one connection (LF and
    octet-counted framing) arrive in values keyed per appliance, each appliance's lines in
    order; no value exceeds the bound except a single line longer than it."""
    topic = new_topic(partitions=3)
    rx = ReceiverProcess(
        {"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap, "ESATRACK_RECEIVER_BIND": "127.0.0.1",
         "ESATRACK_PRODUCER_PACK_BYTES": "1000"},
        ["--topic", topic, "--udp-port", "0", "--tcp-port", str(free_port()),
         "--spool-dir", str(tmp_path / "spool"), "--metrics-port", "0"])
    try:
        sent: dict[bytes, list[bytes]] = {}
        long_line = b"<22>Nov 19 09:16:38 esa-lf-a mail_logs: Info: long " + b"y" * 1500
        for framing in ("lf", "octet"):
            a = _lines(framing, f"esa-{framing}-a", 400)
            b = _lines(framing, f"esa-{framing}-b", 400)
            mixed = [line for pair in zip(a, b, strict=True) for line in pair]
            if framing == "lf":
                mixed.insert(301, long_line)
                a.insert(151, long_line)
            sent[f"esa-{framing}-a".encode()] = a
            sent[f"esa-{framing}-b".encode()] = b
            payload = (b"".join(line + b"\n" for line in mixed) if framing == "lf" else
                       b"".join(b"%d %s" % (len(line), line) for line in mixed))
            with socket.create_connection(("127.0.0.1", rx.tcp)) as sock:
                sock.sendall(payload)  # in one go: reads hold lines of both appliances
        total = sum(map(len, sent.values()))
        records = read_topic(kafka_bootstrap, topic, total, lines=True)
        assert lines_by_key(records) == sent
        for record in records:
            assert len(record.value) <= 1000 or record.value == long_line
        assert max(len(record.lines) for record in records) > 1
        assert len(records) < total / 5
    finally:
        output = rx.stop()
        rx.kill()
    assert f"{total} lines in, {total} published" in output


@pytest.mark.parametrize("linger", ["200", "0"])
def test_the_linger_packs_lines_sent_one_at_a_time(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path, linger: str
) -> None:
    """Lines sent one per datagram, or one per TCP write with short pauses (as appliances send
    at a steady pace), wait the ESATRACK_PRODUCER_PACK_LINGER_MS and arrive packed into few
    records, each appliance's lines in order, with the first line's receive time. With linger 0
    every datagram is a record of its own and TCP records hold what one read delivered."""
    topic = new_topic(partitions=3)
    metrics_port = free_port()
    rx = ReceiverProcess(
        {"ESATRACK_KAFKA_BOOTSTRAP": kafka_bootstrap, "ESATRACK_RECEIVER_BIND": "127.0.0.1",
         "ESATRACK_PRODUCER_PACK_LINGER_MS": linger},
        ["--topic", topic, "--udp-port", str(free_port(socket.SOCK_DGRAM)),
         "--tcp-port", str(free_port()), "--spool-dir", str(tmp_path / "spool"),
         "--metrics-port", str(metrics_port)])
    try:
        udp = _lines("udp", "esa-udp", 40)
        tcp = _lines("tcp", "esa-tcp", 40)
        started_ms = time.time_ns() // 1_000_000
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with socket.create_connection(("127.0.0.1", rx.tcp)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for udp_line, tcp_line in zip(udp, tcp, strict=True):
                sender.sendto(udp_line, ("127.0.0.1", rx.udp))
                sock.sendall(tcp_line + b"\n")
                time.sleep(0.002)  # well under the linger; a read each, as at a steady pace
            sender.close()
            records = read_topic(kafka_bootstrap, topic, 80, lines=True)
        assert lines_by_key(records) == {b"esa-udp": udp, b"esa-tcp": tcp}
        per_key = Counter(record.key for record in records)
        if linger == "0":
            assert per_key[b"esa-udp"] == 40, "a datagram is a record of its own without linger"
            assert per_key[b"esa-tcp"] > 20, "TCP reads held more than one line each"
        else:
            # Sent within ~0.1-0.2 s: one or two lingers' worth of records per appliance.
            assert per_key[b"esa-udp"] <= 4, per_key
            assert per_key[b"esa-tcp"] <= 4, per_key
        for record in records:
            assert record.headers["transport"] == (b"udp" if record.key == b"esa-udp" else b"tcp")
            assert started_ms <= int(record.headers["received_ms"]) <= time.time_ns() // 1_000_000
        health = orjson.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{metrics_port}/healthz").read())
        assert health["published"] == health["lines_in"] == 80
        assert health["producer_queue"] == 0
    finally:
        output = rx.stop()
        rx.kill()
    assert "80 lines in, 80 published" in output


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
        records = read_topic(kafka_bootstrap, topic, 2, lines=True)
        assert lines_by_key(records) == {b"esa1": good}
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
