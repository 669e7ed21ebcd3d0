"""Receiver throughput: loopback TCP sender -> `esatrack receive` -> the local Kafka.

Starts the receiver as its own process (as in production), sends N syslog lines over one or more
TCP connections as fast as loopback takes them, and waits until Kafka acknowledged all of them
(the receiver's /healthz ``published`` count, in lines however many each record holds). Prints
lines/s read and lines/s acknowledged, and how many Kafka records carried them (the receiver packs
lines per appliance into values of ``ESATRACK_PRODUCER_PACK_BYTES``; ``--pack-bytes 0``: one line
per record). Bounded: N lines and a time limit. Needs the local Kafka (`esatrack stack up`).

    .venv/bin/python bench/bench_receiver.py [--lines 1000000] [--connections 2] [--framing lf]
        [--pack-bytes N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # the admin module re-exports it untyped

LINE = ("<22>Nov 19 09:16:38 esa{host}.example.com mail_logs: Info: MID {mid} ICID 445566 RID 0 "
        "To: <recipient{mid}@example.org>")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _payload(n: int, octet: bool) -> bytes:
    lines = [LINE.format(host=i % 4, mid=1_000_000 + i).encode() for i in range(n)]
    if octet:
        return b"".join(b"%d %s" % (len(line), line) for line in lines)
    return b"\n".join(lines) + b"\n"


def _health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
        return dict(json.loads(reply.read()))


def _records(bootstrap: str, topic: str) -> int:
    """Records in the topic (the sum of its partitions' high watermarks)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-receiver-count"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in partitions)
    finally:
        consumer.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--framing", choices=["lf", "octet"], default="lf")
    parser.add_argument("--bootstrap", default=os.environ.get("ESATRACK_KAFKA_BOOTSTRAP",
                                                              "127.0.0.1:9092"))
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--pack-bytes", type=int, default=None,
                        help="ESATRACK_PRODUCER_PACK_BYTES for the receiver (default: its setting)")
    args = parser.parse_args()

    topic = f"bench-receiver-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[topic].result(30)
    tcp, metrics = _port(), _port()
    per_conn = args.lines // args.connections
    total = per_conn * args.connections
    payloads = [_payload(per_conn, args.framing == "octet") for _ in range(args.connections)]
    size = sum(len(p) for p in payloads)
    with tempfile.TemporaryDirectory() as spool:
        env = {**os.environ, "ESATRACK_KAFKA_BOOTSTRAP": args.bootstrap,
               "ESATRACK_RECEIVER_BIND": "127.0.0.1"}
        if args.pack_bytes is not None:
            env["ESATRACK_PRODUCER_PACK_BYTES"] = str(args.pack_bytes)
        pack = env.get("ESATRACK_PRODUCER_PACK_BYTES", "65536 (default)")
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "receive", "--topic", topic, "--udp-port", "0",
             "--tcp-port", str(tcp), "--metrics-port", str(metrics), "--spool-dir", spool],
            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert proc.stderr is not None
        for raw in proc.stderr:
            if b"listening" in raw:
                break
        else:
            print("receiver did not start", file=sys.stderr)
            return 1
        threading.Thread(target=lambda: [None for _ in proc.stderr or ()], daemon=True).start()
        try:
            def send(data: bytes) -> None:
                with socket.create_connection(("127.0.0.1", tcp)) as sock:
                    view = memoryview(data)
                    for start in range(0, len(data), 1 << 20):
                        sock.sendall(view[start:start + (1 << 20)])

            begin = time.perf_counter()
            senders = [threading.Thread(target=send, args=(p,)) for p in payloads]
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join()
            sent = time.perf_counter() - begin
            read_at = acked_at = None
            deadline = begin + args.time_limit
            health: dict[str, object] = {}
            while time.perf_counter() < deadline:
                health = _health(metrics)
                now = time.perf_counter() - begin
                if read_at is None and health["lines_in"] == total:
                    read_at = now
                if health["published"] == total:
                    acked_at = now
                    break
                time.sleep(0.02)
            cpu_seconds = _cpu_seconds(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        records = _records(args.bootstrap, topic)
        admin.delete_topics([topic])
    cpu = os.cpu_count()
    print(f"receiver bench: {total:,} lines ({size / total:.0f} B each, {args.framing} framing, "
          f"{args.connections} connections, {cpu} CPUs, Kafka {args.bootstrap})")
    print(f"  sender done after      {sent:7.2f} s")
    if read_at is None or acked_at is None:
        print(f"  INCOMPLETE within {args.time_limit:g} s: {health}")
        return 1
    print(f"  all read after         {read_at:7.2f} s  -> {total / read_at:>10,.0f} lines/s read")
    print(f"  all acknowledged after {acked_at:7.2f} s  -> {total / acked_at:>10,.0f} lines/s "
          f"into Kafka ({size / acked_at / 2**20:.1f} MiB/s)")
    print(f"  receiver CPU time      {cpu_seconds:7.2f} s  -> {total / cpu_seconds:>10,.0f} lines "
          "per CPU-second (includes librdkafka's threads)")
    print(f"  Kafka records          {records:>10,}  -> {total / max(1, records):>10,.1f} lines "
          f"per record (pack bytes {pack})")
    print(f"  load average now: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
