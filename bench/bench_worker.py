"""Stream worker throughput and latency on the local broker.

    .venv/bin/python bench/bench_worker.py [--messages 8000] [--partitions 6] [--latency-seconds 30]
        [--batched 10,50,200] [--mypyc]

Needs the local stack (``esatrack stack up``). Three parts, each on fresh topics:

1. **Floor**: a bare confluent-kafka consume loop reads the raw topic (the same lines the worker
   reads) and does nothing with them.
   In the same run, a faust agent that only takes batches and acks them, run the way the
   worker runs (uvloop, no spinner): what faust itself costs per Kafka message.
2. **Throughput**: ``esatrack worker`` (a real subprocess) starts on the pre-filled raw topic
   and works through it: lines parsed, correlated, records and changelog entries produced and
   acknowledged. Timed from its first processed batch to the last line (its own counters, read
   from its metrics endpoint), with the wall clock and with the worker's CPU time
   (``/proc/<pid>/stat``), since other work on the machine steals wall time. With
   ``--batched N[,N...]`` again with N lines LF-joined per Kafka message (per appliance), the
   shape of a receiver that batches.
3. **Latency**: lines are produced in real time at half the measured sustained rate, stamped
   with the current time; for each ``Message finished`` line, the time from its produce to
   the first complete record of that message on the messages topic (the record's Kafka
   timestamp). Run with ``ESATRACK_GRACE_SECONDS=0``: the grace period delays emission by
   design, so what is reported is the latency beyond the grace. Syslog stamps have one-second
   resolution and the engine emits when the log time passes the finish second, so up to one
   second of the figure is the wait for the next second's lines (by design, not processing).

With ``--mypyc`` the worker subprocesses run the core compiled as wheels ship it (built by
setup.py in a temporary copy: bench/compiled.py), i.e. the production worker; without it they run
the development checkout, interpreted.

The figures go to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import calendar
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402 - after the path is set, like the project's imports
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from bench.mix import HOSTS, generate  # noqa: E402
from streams.ingest.header import appliance  # noqa: E402
from streams.settings import load_settings  # noqa: E402
from streams.worker.topics import ensure_topics  # noqa: E402

BOOTSTRAP = "127.0.0.1:9092"
TICKS = os.sysconf("SC_CLK_TCK")
WORKER_ROOT = [ROOT]
"""Where ``python -m streams.cli worker`` starts (its ``streams`` package): the checkout, or a
compiled copy with ``--mypyc``."""


def log(text: str) -> None:
    print(f"[bench_worker] {text}", file=sys.stderr, flush=True)


class Names:
    def __init__(self, partitions: int) -> None:
        tag = uuid.uuid4().hex[:8]
        self.raw = f"bench-{tag}.raw"
        self.messages = f"bench-{tag}.messages"
        self.connections = f"bench-{tag}.connections"
        self.unparsed = f"bench-{tag}.unparsed"
        self.group = f"bench-{tag}"
        self.partitions = partitions

    def env(self, state: Path, port: int, grace: float) -> dict[str, str]:
        return {
            "ESATRACK_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "ESATRACK_TOPIC_RAW": self.raw, "ESATRACK_TOPIC_MESSAGES": self.messages,
            "ESATRACK_TOPIC_CONNECTIONS": self.connections,
            "ESATRACK_TOPIC_UNPARSED": self.unparsed,
            "ESATRACK_TOPIC_PARTITIONS": str(self.partitions),
            "ESATRACK_WORKER_GROUP": self.group, "ESATRACK_STATE_DIR": str(state),
            "ESATRACK_METRICS_PORT": str(port), "ESATRACK_GRACE_SECONDS": str(grace),
            "ESATRACK_LOG_LEVEL": "WARNING",
        }

    def create(self) -> None:
        settings = load_settings(**{k.removeprefix("ESATRACK_").lower(): v for k, v in
                                    self.env(Path("unused"), 0, 0).items()})
        ensure_topics(settings)

    def drop(self) -> None:
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        names = [self.raw, self.messages, self.connections, self.unparsed,
                 f"{self.group}-correlation-changelog"]
        existing = set(admin.list_topics(timeout=30).topics)
        doomed = [n for n in names if n in existing]
        if doomed:
            for future in admin.delete_topics(doomed).values():
                try:
                    future.result(30)
                except Exception as exc:  # clean-up: report and go on
                    log(f"could not delete a topic: {exc}")


def producer(linger_ms: int = 20) -> Producer:
    return Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": linger_ms,
                     "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})


def produce_all(topic: str, lines: list[bytes], per_message: int = 1) -> int:
    """Produce the lines keyed by appliance, ``per_message`` LF-joined lines per Kafka
    message (1: one line each, as the receiver ships); the number of Kafka messages."""
    p = producer()
    pending: dict[bytes, list[bytes]] = {}
    sent = 0

    def send(key: bytes, value: bytes) -> None:
        while True:
            try:
                p.produce(topic, value, key)
                return
            except BufferError:
                p.poll(0.05)

    for line in lines:
        key = appliance(line) or b"esa"
        if per_message == 1:
            send(key, line)
            sent += 1
            continue
        group = pending.setdefault(key, [])
        group.append(line)
        if len(group) == per_message:
            send(key, b"\n".join(group))
            sent += 1
            group.clear()
    for key, group in pending.items():
        if group:
            send(key, b"\n".join(group))
            sent += 1
    p.flush(120)
    return sent


def bare_consume(topic: str, count: int) -> tuple[float, float]:
    """Lines per wall second and per CPU second of a do-nothing confluent-kafka loop."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"bare-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = 0
    start = cpu0 = None
    while seen < count:
        batch = consumer.consume(10_000, 1.0)
        if batch and start is None:
            start, cpu0 = time.monotonic(), time.process_time()
        seen += sum(1 for m in batch if m.error() is None)
    assert start is not None and cpu0 is not None
    wall, cpu = time.monotonic() - start, time.process_time() - cpu0
    consumer.close()
    return count / wall, count / cpu


def faust_floor(topic: str, count: int) -> tuple[float, float]:
    """Lines per wall and CPU second of a faust agent that only takes batches and acks them
    (what faust itself costs per event, before any work): run in a child process."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as result:
        subprocess.run([sys.executable, __file__, "--noop-faust", topic, str(count),
                        result.name], capture_output=True, timeout=1200, check=False)
        wall, cpu = result.read().split()
    return float(wall), float(cpu)


def _noop_faust(topic: str, count: int, result: str) -> None:
    import asyncio  # noqa: PLC0415 - only in the child process

    import faust  # noqa: PLC0415 - only in the child process

    from streams.worker.app import use_uvloop  # noqa: PLC0415 - only in the child process

    use_uvloop()  # as the worker runs
    app = faust.App(f"noop-{uuid.uuid4().hex[:8]}", broker=f"kafka://{BOOTSTRAP}",
                    web_enabled=False, autodiscover=False, consumer_auto_offset_reset="earliest",
                    key_serializer="raw", value_serializer="raw", topic_allow_declare=False,
                    datadir=tempfile.mkdtemp(prefix="esatrack-noop-"))
    state = {"n": 0, "t0": 0.0, "c0": 0.0}

    async def agent(stream: Any) -> None:
        async for events in stream.take_events(2000, within=0.05):
            if not state["n"]:
                state["t0"], state["c0"] = time.monotonic(), time.process_time()
            state["n"] += len(events)
            if state["n"] >= count:
                wall = time.monotonic() - state["t0"]
                cpu = time.process_time() - state["c0"]
                Path(result).write_text(f"{count / wall} {count / cpu}\n")
                await asyncio.sleep(0)
                os._exit(0)

    app.agent(app.topic(topic, key_type=bytes, value_type=bytes))(agent)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.spinner = None  # as the worker runs: the spinner turns on DEBUG logging
    worker.execute_from_commandline()


class Worker:
    def __init__(self, names: Names, state: Path, grace: float, log_path: Path) -> None:
        self.port = 9600 + os.getpid() % 300
        env = {**os.environ, **names.env(state, self.port, grace)}
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"],
                                     cwd=WORKER_ROOT[0], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                body = r.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                base = name.split("{", 1)[0]
                out[base] = out.get(base, 0.0) + float(value)
        return out

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def throughput(lines: list[bytes], partitions: int, work: Path,
               per_message: int = 1) -> dict[str, Any]:
    names = Names(partitions)
    try:
        names.create()
        log(f"producing {len(lines)} lines to {names.raw} ({partitions} partitions, "
            f"{per_message} per Kafka message)")
        messages = produce_all(names.raw, lines, per_message)
        log("bare confluent-kafka consume loop")
        bare_wall, bare_cpu = bare_consume(names.raw, messages)
        bare_wall, bare_cpu = bare_wall * len(lines) / messages, bare_cpu * len(lines) / messages
        noop_wall, noop_cpu = (0.0, 0.0)
        if per_message == 1:
            log("faust agent that does nothing (faust's own cost per event)")
            noop_wall, noop_cpu = faust_floor(names.raw, messages)
        log("worker on the pre-filled topic")
        worker = Worker(names, work / f"state-throughput-{per_message}", 10.0,
                        work / f"throughput-{per_message}.log")
        try:
            first = cpu_first = None
            done = 0.0
            deadline = time.monotonic() + 1200
            while time.monotonic() < deadline:
                m = worker.metrics()
                done = m.get("esatrack_worker_lines_total", 0.0)
                if done > 0 and first is None:
                    first, first_done, cpu_first = time.monotonic(), done, worker.cpu_seconds()
                if done >= len(lines):
                    break
                if worker.proc.poll() is not None:
                    raise SystemExit(f"worker died; see {worker.log.name}")
                time.sleep(0.05)
            assert first is not None and cpu_first is not None
            wall = time.monotonic() - first
            cpu = worker.cpu_seconds() - cpu_first
            m = worker.metrics()
            counted = done - first_done
        finally:
            worker.stop()
        return {
            "lines": len(lines), "bare_wall": bare_wall, "bare_cpu": bare_cpu,
            "noop_wall": noop_wall, "noop_cpu": noop_cpu,
            "worker_wall": counted / wall, "worker_cpu": counted / cpu,
            "records": m.get("esatrack_worker_records_total", 0.0),
            "state_writes": m.get("esatrack_worker_state_writes_total", 0.0),
        }
    finally:
        names.drop()


def latency(rate: float, seconds: float, partitions: int, work: Path) -> dict[str, Any]:
    """Produce in real time at ``rate`` lines/s; finish line -> complete record delays."""
    names = Names(partitions)
    try:
        names.create()
        worker = Worker(names, work / "state-latency", 0.0, work / "latency.log")
        try:
            deadline = time.monotonic() + 120
            while not worker.metrics() and time.monotonic() < deadline:
                time.sleep(0.3)
            time.sleep(3)  # assignment and recovery
            per_message = 26.0
            n = int(rate * seconds / per_message)
            start = time.time() + 1.0
            lines = generate(n, seed=7, hosts=HOSTS, start=start, rate=rate / per_message)
            log(f"latency run: {len(lines)} lines in real time at ~{rate:.0f} lines/s")
            p = producer(linger_ms=1)
            finished: dict[tuple[bytes, int], float] = {}
            finish_second: dict[tuple[bytes, int], float] = {}
            first_at: dict[tuple[bytes, float], float] = {}
            for line in lines:
                # the mix stamps lines to the second; send each no earlier than its second
                stamp_second = _line_second(line)
                while time.time() < stamp_second:
                    p.poll(0)
                    time.sleep(0.001)
                key = appliance(line) or b"esa"
                p.produce(names.raw, line, key)
                now = time.time()
                first_at.setdefault((key, stamp_second), now)
                body = line.split(b": Info: ", 1)[-1]
                if body.startswith(b"Message finished MID "):
                    mid = int(body.split()[3])
                    finished[(key, mid)] = now
                    finish_second[(key, mid)] = stamp_second
                p.poll(0)
            p.flush(60)
            log(f"{len(finished)} finished messages produced; reading records")
            # the line that makes a record due: the appliance's first line of a later second
            due = {k: first_at.get((k[0], s + 1.0), first_at.get((k[0], s + 2.0), 0.0))
                   for k, s in finish_second.items()}
            delays, beyond = _record_delays(names.messages, finished, due)
        finally:
            worker.stop()
        return {"rate": rate, "finished": len(finished), "delays": delays, "beyond": beyond}
    finally:
        names.drop()


def _line_second(line: bytes) -> float:
    stamp = line[line.index(b">") + 1:].split(b" ")
    parts = [p for p in stamp[:4] if p]
    text = " ".join(x.decode() for x in parts[:3])
    year = time.gmtime().tm_year
    return float(calendar.timegm(time.strptime(f"{year} {text}", "%Y %b %d %H:%M:%S")))


def _record_delays(topic: str, finished: dict[tuple[bytes, int], float],
                   due: dict[tuple[bytes, int], float]) -> tuple[list[float], list[float]]:
    """Per finished message: record time - finish line produced, and record time - the
    line that made it due produced (the part that is processing, not waiting for time)."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"lat-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    delays: dict[tuple[bytes, int], float] = {}
    beyond: list[float] = []
    idle_since = time.monotonic()
    while len(delays) < len(finished) and time.monotonic() - idle_since < 30:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        idle_since = time.monotonic()
        value = message.value()
        if value is None:
            continue
        record = orjson.loads(value)
        key = (record["host"].encode(), int(record["mid"]))
        if record.get("complete") and key in finished and key not in delays:
            _kind, ts_ms = message.timestamp()
            delays[key] = ts_ms / 1000.0 - finished[key]
            if due.get(key):
                beyond.append(ts_ms / 1000.0 - due[key])
    consumer.close()
    return sorted(delays.values()), sorted(beyond)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--noop-faust":
        _noop_faust(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=8000,
                        help="messages of the mix for the throughput run (~26 lines each)")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--batched", default="", metavar="N[,N...]",
                        help="also run the throughput part with N lines per Kafka message")
    parser.add_argument("--latency-rate", type=float,
                        help="lines/s of the latency run (default: half the measured rate)")
    parser.add_argument("--mypyc", action="store_true",
                        help="run the workers on the core compiled as wheels ship it")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.mypyc:
            from bench.compiled import compiled_tree  # noqa: PLC0415 - only with --mypyc

            WORKER_ROOT[0] = stack.enter_context(compiled_tree())
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="esatrack-bench-worker-"))
    try:
        lines = generate(args.messages, seed=3)
        load0 = os.getloadavg()[0]
        t = throughput(lines, args.partitions, work)
        sizes = [int(n) for n in args.batched.split(",") if n.strip() and int(n) > 1]
        batched = [(n, throughput(lines, args.partitions, work, n)) for n in sizes]
        rate = args.latency_rate or t["worker_wall"] / 2
        lat = latency(rate, args.latency_seconds, args.partitions, work)
        load1 = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores, load average {load0:.2f} at start, "
          f"{load1:.2f} at end; worker core "
          f"{'compiled (mypyc)' if WORKER_ROOT[0] != ROOT else 'interpreted (checkout)'}")
    print(f"lines: {t['lines']} (bench/mix.py, {args.messages} messages, 3 appliances), "
          f"{args.partitions} partitions")
    print(f"bare confluent-kafka consume loop: {t['bare_wall']:,.0f} lines/s wall, "
          f"{t['bare_cpu']:,.0f} lines/CPU-s")
    print(f"faust agent doing nothing (take_events, ack): {t['noop_wall']:,.0f} lines/s wall, "
          f"{t['noop_cpu']:,.0f} lines/CPU-s")
    print(f"esatrack worker (parse, correlate, produce, acks): {t['worker_wall']:,.0f} lines/s "
          f"wall, {t['worker_cpu']:,.0f} lines/CPU-s; {t['records']:.0f} records, "
          f"{t['state_writes']:.0f} state writes")
    print(f"ratio worker/bare: {t['worker_wall'] / t['bare_wall']:.3f} wall, "
          f"{t['worker_cpu'] / t['bare_cpu']:.3f} CPU")
    for n, tb in batched:
        # no bare-loop figure here: its first fetch holds most of a few thousand messages,
        # and it is timed from that fetch on
        print(f"with {n} lines per Kafka message: worker {tb['worker_wall']:,.0f} lines/s "
              f"wall, {tb['worker_cpu']:,.0f} lines/CPU-s; {tb['state_writes']:.0f} state "
              "writes")
    delays = lat["delays"]
    if delays:
        print(f"latency at {lat['rate']:,.0f} lines/s, grace 0 s: finish line produced -> "
              f"complete record on the messages topic, {len(delays)}/{lat['finished']} "
              f"messages: p50 {pct(delays, 0.5) * 1000:.0f} ms, "
              f"p99 {pct(delays, 0.99) * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms, "
              f"mean {statistics.fmean(delays) * 1000:.0f} ms")
        beyond = lat["beyond"]
        if beyond:
            print(f"  of which processing (from the appliance's first line of a later second, "
                  f"the line that makes the record due): p50 {pct(beyond, 0.5) * 1000:.0f} ms, "
                  f"p99 {pct(beyond, 0.99) * 1000:.0f} ms")
    else:
        print("latency: no complete records seen")
    return 0


if __name__ == "__main__":
    sys.exit(main())
