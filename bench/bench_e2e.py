"""End to end on the local stack: replay -> Kafka -> worker -> indexer -> OpenSearch.

    .venv/bin/python bench/bench_e2e.py [--messages 10000] [--latency-seconds 60]
        [--latency-rate LINES_PER_S] [--graces 10] [--skip-throughput | --skip-latency]
        [--pack-bytes N] [--no-archive] [--mypyc]

Uses the running local stack (Kafka 127.0.0.1:9092, OpenSearch 127.0.0.1:9200; if it does not
answer, waits a minute, looks again, and only then runs ``esatrack stack up``; it never stops
it). Each phase runs on its own fresh names, so it does not collide with other work on the same
stack: topics ``e2e-<tag>.*``, consumer groups ``e2e-<tag>-worker``/``-indexer``, appliances
``esaN.e2e-<tag>.example.net``, and log times on a day (40-280 days back) whose daily record
indices do not exist yet (index names carry no configurable prefix: the day is what keeps the
records apart). One ``esatrack worker`` and one ``esatrack indexer`` run as real subprocesses,
as ``esatrack stack up --pipeline`` runs them. Everything a phase created (processes, topics,
its daily record indices, its raw-archive documents) is removed when the phase ends, also on
Ctrl-C or a failure.

1. **Throughput**: the mix of ``bench/mix.py`` is written to a file and published by
   ``esatrack replay`` (a subprocess: the real replay path) at full speed. Timed from the first
   line produced (the earliest Kafka timestamp on the raw topic) to the moment OpenSearch's
   ``_count`` of message + connection records reaches the number the worker's own
   ``PartitionProcessor`` makes of the same lines in this process (computed before the run).
   Progress and stage rates come from the raw topic's offsets and the worker's and indexer's
   Prometheus metrics. The indexer also archives the raw lines (hash-chained), as in
   production; the archive's completion is reported apart.
2. **Latency**: lines are produced in real time (each at its own log time, shifted by whole
   days) at ``--latency-rate`` (default: half the sustained rate of part 1) by an in-process
   producer built like replay's, which ships lines as the receiver does: each appliance's lines
   wait in a buffer until the oldest has waited ``--linger-ms`` (the receiver's packing linger)
   or a value is full, then go as LF-separated values (``--pack-bytes 0``: one line per record).
   A poller searches every ``--poll`` seconds for complete message records (``complete:
   true``) of the messages whose ``Message finished`` line arrived and was not yet found (by
   appliance and MID). A message's latency is from the arrival of its finish line (its
   scheduled time, when a receiver would have read it; the linger is part of the latency) to
   the return of the first search that found its record: an upper bound, at most one poll
   interval plus one search late. The workers run as configured by default: a message's record
   goes out at its ``Message finished`` line (``ESATRACK_EMIT_AT_FINISH``), and again after
   the grace (10 s of log time) only if lines within it changed it. Run once per ``--graces``
   value (default: the default grace only). The verdict against the 3 s target is given for
   the default grace; other graces are diagnostics (grace 0 is not faster: every open message
   is then emitted, in flight, at each second of log time in which it got a line, so the
   worker emits and the indexer writes several revisions per message).

Values are packed (``ESATRACK_PRODUCER_PACK_BYTES``, or ``--pack-bytes``) in both parts, as the
shippers ship them; ``--mypyc`` runs the worker on the core compiled as wheels ship it (the
production build, bench/compiled.py). The figures go to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKER_ROOT = [ROOT]
"""Where the worker subprocess imports ``streams`` from: the checkout, or with ``--mypyc`` a
copy whose core is compiled as wheels ship it (bench/compiled.py)."""

import orjson  # noqa: E402 - after sys.path, like the other imports
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402 - after sys.path
from confluent_kafka.admin import AdminClient  # noqa: E402

from bench.mix import frame, plan  # noqa: E402
from streams.ingest.header import appliance  # noqa: E402
from streams.ingest.pack import pack_lines  # noqa: E402
from streams.ingest.producer import headers_for, producer_config  # noqa: E402
from streams.opensearch.client import make_client  # noqa: E402
from streams.opensearch.naming import daily_index  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402
from streams.stack import control, process  # noqa: E402
from streams.worker.processor import PartitionProcessor, RawLine  # noqa: E402
from streams.worker.topics import ensure_topics  # noqa: E402

DAY = 86_400.0
LINES_PER_MESSAGE = 27.5
"""Average lines per connection of the mix (549,377 lines for 20,000)."""
TICKS = os.sysconf("SC_CLK_TCK")


def log(text: str) -> None:
    print(f"[bench_e2e] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int | None) -> float | None:
    """user + system CPU seconds of a live process, None if it is gone."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def pct(values: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank)."""
    return values[min(len(values) - 1, int(q * len(values)))]


# --- the shared stack --------------------------------------------------------------------------


def stack_answers(settings: Settings) -> bool:
    try:
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).list_topics(timeout=10)
        with urllib.request.urlopen(settings.opensearch_url, timeout=10) as reply:
            return bool(200 <= reply.status < 300)
    except Exception:  # any failure means "not usable now"; the caller waits or starts it
        return False


def ensure_stack(settings: Settings) -> None:
    """Use the running stack; wait a minute if it is down, then start it (never stop it)."""
    if stack_answers(settings):
        return
    log("the local stack does not answer; waiting a minute (someone may be restarting it)")
    time.sleep(60)
    if stack_answers(settings):
        return
    log("still down: esatrack stack up")
    subprocess.run([sys.executable, "-m", "streams.cli", "stack", "up"], cwd=ROOT, check=True)
    if not stack_answers(settings):
        raise SystemExit("the local stack is not usable after `esatrack stack up`")


def stack_pids() -> dict[str, int]:
    pids = {}
    for svc in control.services(load_settings(), ["kafka", "opensearch"]):
        pid = process.running_pid(svc.files)
        if pid is not None:
            pids[svc.name] = pid
    return pids


# --- one phase's names, services and clean-up ----------------------------------------------------


class Service:
    """One ``esatrack`` subcommand as a subprocess in its own session (Ctrl-C reaches us only,
    and we stop it in order)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path,
                 port: int | None = None, *, root: Path = ROOT) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", *args], cwd=root,
                                     env={**os.environ, **env}, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.last_cpu = 0.0

    def cpu(self) -> float:
        """CPU seconds so far (the last reading once the process has exited)."""
        if self.proc.returncode is not None:  # reaped: the pid may belong to another process
            return self.last_cpu
        now = cpu_seconds(self.proc.pid)  # before poll(): a zombie's stat still has its times
        self.proc.poll()
        if now is not None:
            self.last_cpu = now
        return self.last_cpu

    def metrics(self) -> dict[str, float]:
        """The Prometheus counters, summed over labels except ``kind``."""
        if self.port is None:
            return {}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=3) as r:
                body = r.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in body.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            base, _, labels = name.partition("{")
            if 'kind="' in labels:
                base += "." + labels.split('kind="', 1)[1].split('"', 1)[0]
            out[base] = out.get(base, 0.0) + float(value)
        return out

    def ready(self) -> bool:
        if self.port is None:
            return True
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"{self.name} exited ({self.proc.returncode}); its log ends:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.cpu()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class Phase:
    """Fresh names for one run of the chain, its services, and the removal of what it made."""

    def __init__(self, settings: Settings, work: Path, grace: float, label: str,
                 taken_days: set[str], *, archive: bool = True, pack_bytes: int = 65536,
                 linger_ms: float = 10.0) -> None:
        self.tag = f"e2e-{uuid.uuid4().hex[:8]}"
        self.work = work / self.tag
        self.work.mkdir(parents=True)
        self.grace = grace
        self.label = label
        self.hosts = [f"esa{n}.{self.tag}.example.net" for n in (1, 2, 3)]
        self.base = settings
        self.client = make_client(settings)
        self.indices: list[str] = []
        """This phase's daily record indices (set by _free_day; never empty after it)."""
        self.day = self._free_day(taken_days)
        self.services: list[Service] = []
        self.worker_port, self.indexer_port = free_port(), free_port()
        self.archive = archive
        self.pack_bytes = pack_bytes
        self.linger_ms = linger_ms
        """How long the latency producer lets an appliance's lines wait to be packed together."""
        """Lines per Kafka value as the shippers pack them (replay here; 0: one line each)."""
        self.env = {
            "ESATRACK_PRODUCER_PACK_BYTES": str(pack_bytes),
            "ESATRACK_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "ESATRACK_OPENSEARCH_URL": settings.opensearch_url,
            "ESATRACK_TOPIC_RAW": f"{self.tag}.raw",
            "ESATRACK_TOPIC_MESSAGES": f"{self.tag}.messages",
            "ESATRACK_TOPIC_CONNECTIONS": f"{self.tag}.connections",
            "ESATRACK_TOPIC_UNPARSED": f"{self.tag}.unparsed",
            "ESATRACK_TOPIC_ALERTS": f"{self.tag}.alerts",
            "ESATRACK_TOPIC_DEAD_LETTERS": f"{self.tag}.dead-letters",
            "ESATRACK_WORKER_GROUP": f"{self.tag}-worker",
            "ESATRACK_INDEXER_GROUP": f"{self.tag}-indexer",
            "ESATRACK_GRACE_SECONDS": str(grace),
            "ESATRACK_LOG_LEVEL": "WARNING",
        }
        self.settings = load_settings(**{k.removeprefix("ESATRACK_").lower(): v
                                         for k, v in self.env.items()})

    def _free_day(self, taken: set[str]) -> datetime:
        """A UTC day 40-280 days back (inside the year inference's window for year-less
        syslog stamps) whose record indices, and the next day's, do not exist."""
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        rng = random.Random()
        for _ in range(200):
            day = today - timedelta(days=rng.randrange(40, 280))
            names = [daily_index(kind, day + timedelta(days=d))
                     for kind in ("messages", "connections") for d in (0, 1)]
            if any(n in taken for n in names):
                continue
            if not any(self.client.indices.exists(index=name) for name in names):
                taken.update(names)
                self.indices = names
                return day
        raise SystemExit("no free day for the record indices in the last 280 days")

    @property
    def record_indices(self) -> str:
        return ",".join(self.indices)

    def start(self) -> tuple[Service, Service]:
        ensure_topics(self.settings)
        worker = Service("worker", ["worker", "--state-dir", str(self.work / "state")],
                         {**self.env, "ESATRACK_METRICS_PORT": str(self.worker_port)},
                         self.work / "worker.log", self.worker_port, root=WORKER_ROOT[0])
        self.services.append(worker)
        # --no-archive: the indexer reads an empty raw topic instead of the worker's
        unarchived = {} if self.archive else {"ESATRACK_TOPIC_RAW": f"{self.tag}.not-archived"}
        indexer = Service("indexer", ["indexer"],
                          {**self.env, "ESATRACK_METRICS_PORT": str(self.indexer_port),
                           **unarchived},
                          self.work / "indexer.log", self.indexer_port)
        self.services.append(indexer)
        deadline = time.monotonic() + 180
        while not (worker.ready() and indexer.ready()):
            worker.check()
            indexer.check()
            if time.monotonic() > deadline:
                raise SystemExit("worker/indexer not ready after 180 s")
            time.sleep(0.5)
        return worker, indexer

    def searchable(self) -> int:
        """Message + connection records OpenSearch finds now."""
        if not self.indices:
            raise RuntimeError("no record indices recorded")
        reply = self.client.count(index=self.record_indices, ignore_unavailable=True,
                                  allow_no_indices=True)
        return int(reply["count"])

    def raw_archived(self) -> int:
        reply = self.client.count(index="esa-raw-*", ignore_unavailable=True,
                                  allow_no_indices=True,
                                  body={"query": {"terms": {"host": self.hosts}}})
        return int(reply["count"])

    def _left(self) -> int:
        """Documents of this phase's appliances still searchable in any esa-* index."""
        self.client.indices.refresh(index="esa-*", ignore_unavailable=True,
                                    allow_no_indices=True)
        reply = self.client.count(index="esa-*", ignore_unavailable=True, allow_no_indices=True,
                                  body={"query": {"terms": {"host": self.hosts}}})
        return int(reply["count"])

    def close(self) -> None:
        """Stop the services, then delete the topics, the record indices and every document of
        this phase's appliances (the raw archive's, in the shared daily raw index); each step is
        tried even if an earlier one failed."""
        for svc in reversed(self.services):
            try:
                svc.stop()
            except Exception as exc:  # clean-up goes on: report and continue
                log(f"could not stop {svc.name}: {exc}")
        admin = AdminClient({"bootstrap.servers": self.base.kafka_bootstrap})
        try:
            mine = [t for t in admin.list_topics(timeout=30).topics if t.startswith(self.tag)]
            for future in admin.delete_topics(mine).values() if mine else ():
                future.result(30)
        except Exception as exc:  # clean-up goes on: report and continue
            log(f"could not delete the topics of {self.tag}: {exc}")
        try:
            if not self.indices:  # an empty name would mean every index
                raise RuntimeError("no record indices recorded")
            self.client.indices.delete(index=self.record_indices, ignore_unavailable=True)
            try:
                self.client.delete_by_query(index="esa-*", ignore_unavailable=True,
                                            allow_no_indices=True, conflicts="proceed",
                                            refresh=True, request_timeout=900,
                                            body={"query": {"terms": {"host": self.hosts}}})
            except Exception as exc:  # the server goes on deleting: wait for it below
                log(f"delete-by-query of {self.tag}: {exc}; waiting for it to finish")
            deadline = time.monotonic() + 900
            while self._left() and time.monotonic() < deadline:
                time.sleep(2)
            if self._left():
                log(f"documents of {self.tag} still there after 15 minutes")
        except Exception as exc:  # clean-up goes on: report and continue
            log(f"could not delete the documents of {self.tag}: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)


@contextlib.contextmanager
def phase(settings: Settings, work: Path, grace: float, label: str,
          taken: set[str], *, archive: bool = True, pack_bytes: int = 65536,
          linger_ms: float = 10.0) -> Iterator[Phase]:
    ph = Phase(settings, work, grace, label, taken, archive=archive, pack_bytes=pack_bytes,
               linger_ms=linger_ms)
    try:
        yield ph
    finally:
        log(f"{label}: cleaning up {ph.tag} (services, topics, indices)")
        ph.close()


# --- throughput --------------------------------------------------------------------------------


def expected_records(settings: Settings, lines: list[bytes]) -> int:
    """Distinct message + connection record ids the worker's own processor makes of the lines,
    as the stream would have emitted them a couple of minutes after the last line."""
    proc = PartitionProcessor(settings, 0)
    ids: set[bytes] = set()
    now = time.time()
    for start in range(0, len(lines), 2000):
        chunk = [RawLine(appliance(line) or b"esa", line, now, start + i)
                 for i, line in enumerate(lines[start:start + 2000])]
        out = proc.process(chunk)
        ids.update(k for k, _ in out.messages)
        ids.update(k for k, _ in out.connections)
    out = proc.tick(time.time() + settings.grace_seconds + 120)
    ids.update(k for k, _ in out.messages)
    ids.update(k for k, _ in out.connections)
    return len(ids)


@dataclass
class Sample:
    at: float
    produced: int
    worker_lines: float
    worker_records: float
    indexed_records: float
    indexed_raw: float
    searchable: int


def raw_offsets(consumer: Consumer, topic: str, partitions: int) -> int:
    total = 0
    for p in range(partitions):
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5,
                                                    cached=False)
        total += max(0, high)
    return total


def first_produced(topic: str, partitions: int, bootstrap: str) -> float:
    """The earliest Kafka timestamp (CreateTime: the producer's clock) on the topic, seconds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-peek-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    stamps: dict[int, float] = {}
    deadline = time.monotonic() + 30
    while len(stamps) < partitions and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        stamps.setdefault(int(message.partition() or 0), message.timestamp()[1] / 1000.0)
    consumer.close()
    return min(stamps.values())


def stage_rate(samples: list[Sample], attr: str) -> tuple[float, float]:
    """(average per second from the stage's first to its last change, best 5-second rate)."""
    values = [(s.at, float(getattr(s, attr))) for s in samples]
    moving = [i for i in range(1, len(values)) if values[i][1] != values[i - 1][1]]
    if not moving:
        return 0.0, 0.0
    first, last = moving[0] - 1, moving[-1]
    span = values[last][0] - values[first][0]
    average = (values[last][1] - values[first][1]) / span if span > 0 else 0.0
    best = 0.0
    j = first
    for i in range(first, last + 1):
        while values[i][0] - values[j][0] > 5.0:
            j += 1
        if values[i][0] - values[j][0] >= 2.0:
            best = max(best, (values[i][1] - values[j][1]) / (values[i][0] - values[j][0]))
    return average, best


def throughput(ph: Phase, n_messages: int, mix_rate: float, timeout: float) -> dict[str, Any]:
    start = ph.day.timestamp() + 3600
    lines = [frame(host, t, body) for t, _i, _s, host, body in sorted(
        (t, i, s, m.host, body) for i, m in enumerate(plan(n_messages, 11, ph.hosts, start,
                                                           mix_rate))
        for t, s, body in m.lines)]
    path = ph.work / "mix.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    log(f"throughput: {len(lines):,} lines ({n_messages:,} connections of the mix) in {path}")
    expected = expected_records(ph.settings, lines)
    log(f"throughput: the worker's processor makes {expected:,} message + connection records "
        "of them; starting a worker and an indexer")
    worker, indexer = ph.start()
    partitions = ph.settings.topic_partitions
    pids = stack_pids()
    cpu0 = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    w0, i0 = worker.cpu(), indexer.cpu()
    peek = Consumer({"bootstrap.servers": ph.base.kafka_bootstrap,
                     "group.id": f"e2e-watch-{uuid.uuid4()}"})
    replay = Service("replay", ["replay", str(path)], ph.env, ph.work / "replay.log")
    ph.services.append(replay)
    launched = time.time()
    samples: list[Sample] = []
    done_at = archived_at = worker_done_at = None
    last_print = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replay.cpu()
        wm, im = worker.metrics(), indexer.metrics()
        s = Sample(time.time(), raw_offsets(peek, ph.settings.topic_raw, partitions),
                   wm.get("esatrack_worker_lines_total", 0.0),
                   wm.get("esatrack_worker_records_total", 0.0),
                   im.get("esatrack_indexer_docs_indexed_total.messages", 0.0)
                   + im.get("esatrack_indexer_docs_indexed_total.connections", 0.0),
                   im.get("esatrack_indexer_docs_indexed_total.raw", 0.0), ph.searchable())
        samples.append(s)
        if worker_done_at is None and s.worker_lines >= len(lines):
            worker_done_at = s.at
        if done_at is None and s.searchable >= expected:
            done_at = s.at
            log(f"throughput: all {expected:,} records searchable")
        replayed = replay.proc.poll() is not None
        if archived_at is None and (not ph.archive or (replayed and s.indexed_raw >= s.produced)):
            archived_at = s.at
        if s.at - last_print >= 3 or done_at == s.at:
            last_print = s.at
            log(f"t={s.at - launched:5.0f}s produced {s.produced:>9,} | worker "
                f"{s.worker_lines:>9,.0f} lines {s.worker_records:>7,.0f} records | indexer "
                f"{s.indexed_records:>7,.0f} records {s.indexed_raw:>9,.0f} raw | searchable "
                f"{s.searchable:>7,}/{expected:,}"
                f" | load {loadavg()}")
        if done_at is not None and archived_at is not None:
            break
        worker.check()
        indexer.check()
        time.sleep(0.25 if s.searchable > 0.95 * expected else 1.0)
    peek.close()
    first = first_produced(ph.settings.topic_raw, partitions, ph.base.kafka_bootstrap)
    replay_end = replay.proc.wait(60)
    cpu1 = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    return {
        "lines": len(lines), "expected": expected, "archive": ph.archive, "first": first,
        "launched": launched,
        "done": done_at, "worker_done": worker_done_at, "archived": archived_at,
        "final": samples[-1], "replay_rc": replay_end, "samples": samples,
        "cpu": {"replay": replay.cpu(), "worker": worker.cpu() - w0,
                "indexer": indexer.cpu() - i0,
                **{name: cpu1[name] - cpu0[name] for name in pids}},
    }


# --- latency -------------------------------------------------------------------------------------


@dataclass
class Watch:
    """Messages whose finish line was produced, and when their complete record was found."""

    produced: dict[tuple[str, int], float] = field(default_factory=dict)
    found: dict[tuple[str, int], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    polls: int = 0
    poll_seconds: float = 0.0

    def pending(self) -> dict[tuple[str, int], float]:
        with self.lock:
            return {k: v for k, v in self.produced.items() if k not in self.found}


POLL_CHUNK = 4000
"""Pending messages asked for per search (MIDs can repeat across appliances: 2 hits each)."""


def poller(ph: Phase, watch: Watch, interval: float, stop: threading.Event) -> None:
    """Every ``interval`` s: search complete message records of the pending messages."""
    index = ",".join(n for n in ph.indices if n.startswith("esa-messages-"))
    client = make_client(ph.base)
    while not stop.is_set():
        began = time.time()
        pending = watch.pending()
        # Oldest first, in chunks whose hits fit OpenSearch's result window (10,000): at high
        # rates and the default grace, more messages than that wait for their records.
        keys = sorted(pending, key=pending.__getitem__)
        for start in range(0, len(keys), POLL_CHUNK):
            mids = sorted({mid for _host, mid in keys[start:start + POLL_CHUNK]})
            asked = time.time()
            try:
                reply = client.search(
                    index=index, ignore_unavailable=True, allow_no_indices=True,
                    body={"size": min(len(mids) * 2, 10_000), "_source": ["host", "mid"],
                          "query": {"bool": {"filter": [{"term": {"complete": True}},
                                                        {"terms": {"mid": mids}}]}}})
            except Exception as exc:  # a failed poll is retried on the next round
                log(f"latency poll failed: {exc}")
                reply = {"hits": {"hits": []}}
            answered = time.time()
            watch.polls += 1
            watch.poll_seconds += answered - asked
            with watch.lock:
                for hit in reply["hits"]["hits"]:
                    key = (str(hit["_source"]["host"]), int(hit["_source"]["mid"]))
                    if key in pending and key not in watch.found:
                        watch.found[key] = answered
        stop.wait(max(0.0, interval - (time.time() - began)))


def first_complete(ph: Phase, produced: dict[tuple[str, int], float]) -> dict[
        tuple[str, int], float]:
    """When the worker produced the first complete record of each message: the record's Kafka
    timestamp on the messages topic (set by the worker's producer when it appends the record)."""
    consumer = Consumer({"bootstrap.servers": ph.base.kafka_bootstrap,
                         "group.id": f"e2e-read-{uuid.uuid4()}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([ph.settings.topic_messages])
    seen: dict[tuple[str, int], float] = {}
    idle_since = time.monotonic()
    while len(seen) < len(produced) and time.monotonic() - idle_since < 10:
        message = consumer.poll(0.5)
        value = None if message is None or message.error() else message.value()
        if message is None or not value:
            continue
        idle_since = time.monotonic()
        record = orjson.loads(value)
        key = (str(record.get("host")), int(record.get("mid") or 0))
        if record.get("complete") and key in produced and key not in seen:
            seen[key] = message.timestamp()[1] / 1000.0
    consumer.close()
    return seen


def pack_values(lines: list[bytes], bound: int) -> list[bytes]:
    """Lines of one appliance as the receiver ships them: packed by :func:`pack_lines` into
    values of at most ``bound`` bytes, or one line per value when ``bound`` is 0."""
    return [value for value, _count in pack_lines(lines, bound)] if bound > 0 else lines


def latency(ph: Phase, rate: float, seconds: float, interval: float) -> dict[str, Any]:
    worker, indexer = ph.start()
    shift = (time.time() - ph.day.timestamp()) // DAY * DAY  # whole days: log time on ph.day
    start = time.time() + 2.0
    messages = plan(int(rate * seconds / LINES_PER_MESSAGE) + 1, 13, ph.hosts, start - shift,
                    rate / LINES_PER_MESSAGE)
    end = start + seconds
    timed = sorted((t + shift, i, s, m.host, body) for i, m in enumerate(messages)
                   for t, s, body in m.lines if t + shift <= end)
    log(f"{ph.label}: {len(timed):,} lines in real time over {seconds:.0f} s "
        f"(~{len(timed) / seconds:,.0f} lines/s), log times {shift / DAY:.0f} days back")
    watch = Watch()
    stop = threading.Event()
    thread = threading.Thread(target=poller, args=(ph, watch, interval, stop), daemon=True)
    thread.start()
    producer = Producer(producer_config(ph.settings))
    topic = ph.settings.topic_raw
    last_print = time.monotonic()
    pack, linger = ph.pack_bytes, ph.linger_ms / 1000.0
    buffers: dict[str, list[bytes]] = {}
    oldest: dict[str, float] = {}
    size: dict[str, int] = {}

    def ship(host: str) -> None:
        """Produce an appliance's buffered lines, packed as the receiver packs them."""
        now_ms = time.time_ns() // 1_000_000
        for value in pack_values(buffers.pop(host), pack):
            while True:
                try:
                    producer.produce(topic, value, host.encode(),
                                     headers=headers_for(now_ms, b"bench", b"file"))
                    break
                except BufferError:
                    producer.poll(0.05)
        del oldest[host], size[host]

    try:
        n = next_print = 0
        while n < len(timed) or buffers:
            wake = min([timed[n][0]] if n < len(timed) else [], default=float("inf"))
            wake = min(wake, *(t + linger for t in oldest.values())) if oldest else wake
            while (ahead := wake - time.time()) > 0:
                producer.poll(0)
                time.sleep(min(ahead, 0.002))
            # Lines arrive at their own time and wait in their appliance's buffer as in the
            # receiver: shipped when the oldest has waited the linger or the buffer holds a
            # full value (linger 0: what arrived together goes at once; pack 0: line by line).
            now = time.time()
            while n < len(timed) and timed[n][0] <= now:
                at, _i, _s, host, body = timed[n]
                line = frame(host, at - shift, body)
                if host not in buffers:
                    buffers[host], oldest[host], size[host] = [], at, 0
                buffers[host].append(line)
                size[host] += len(line) + 1
                if body.startswith("Message finished MID "):
                    with watch.lock:  # latency runs from the line's arrival, linger included
                        watch.produced[(host, int(body.split()[3]))] = at
                n += 1
            for host in [h for h, t in oldest.items()
                         if now - t >= linger or size[h] >= pack or not pack]:
                ship(host)
            producer.poll(0)
            if n >= next_print:
                next_print = n + 500
                if time.monotonic() - last_print >= 5:
                    last_print = time.monotonic()
                    log(f"{ph.label}: {n:,}/{len(timed):,} lines produced, "
                        f"{len(watch.found):,}/{len(watch.produced):,} records found | "
                        f"worker lag {worker.metrics().get('esatrack_worker_consumer_lag', 0):,.0f}"
                        f" | load {loadavg()}")
        producer.flush(60)
        log(f"{ph.label}: all produced; waiting for the last records")
        deadline = time.time() + ph.grace + 60
        while watch.pending() and time.time() < deadline:
            worker.check()
            indexer.check()
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(10)
    delays = sorted(watch.found[k] - watch.produced[k] for k in watch.found)
    on_topic = first_complete(ph, watch.produced)
    worker_part = sorted(on_topic[k] - watch.produced[k] for k in on_topic)
    index_part = sorted(watch.found[k] - on_topic[k] for k in watch.found if k in on_topic)
    im = indexer.metrics()
    raw = im.get("esatrack_indexer_docs_indexed_total.raw", 0.0)
    batches = im.get("esatrack_indexer_batch_seconds_count", 0.0)
    batch_mean = im.get("esatrack_indexer_batch_seconds_sum", 0.0) / max(1.0, batches)
    return {"rate": len(timed) / seconds, "expected": len(watch.produced), "delays": delays,
            "batches": batches, "batch_mean": batch_mean,
            "lines": len(timed), "raw_indexed": raw, "worker_part": worker_part,
            "index_part": index_part,
            "poll_mean": watch.poll_seconds / max(1, watch.polls), "polls": watch.polls}


# --- main ----------------------------------------------------------------------------------------


def report_throughput(t: dict[str, Any], messages: int) -> float:
    """Print the throughput figures; the sustained lines/s (0 if the run did not finish)."""
    final: Sample = t["final"]
    print(f"throughput: {t['lines']:,} lines of the mix ({messages:,} connections, 3 appliances) "
          f"replayed by `esatrack replay` at full speed")
    if t["done"] is None:
        print(f"  NOT FINISHED within the timeout: {final.searchable:,}/{t['expected']:,} records "
              f"searchable, worker at {final.worker_lines:,.0f} lines")
        return 0.0
    span = float(t["done"] - t["first"])
    sustained = int(t["lines"]) / span
    print(f"  end to end (first line produced -> all {t['expected']:,} message + connection "
          f"records searchable): {span:.1f} s = {sustained:,.0f} lines/s")
    if t["worker_done"] is not None:
        wspan = t["worker_done"] - t["first"]
        print(f"  worker had processed every line after {wspan:.1f} s ({t['lines'] / wspan:,.0f} "
              "lines/s); after it: the last records' grace, indexing and refresh")
    if not t["archive"]:
        print("  raw archive OFF (--no-archive): the indexer indexed records only")
    elif t["archived"] is not None:
        aspan = t["archived"] - t["first"]
        print(f"  raw archive (every line hash-chained into esa-raw) complete after {aspan:.1f} s "
              f"({t['lines'] / aspan:,.0f} lines/s)")
    else:
        print(f"  raw archive NOT complete at the end: {final.indexed_raw:,.0f}/"
              f"{final.produced:,} records")
    samples = t["samples"]
    for label, attr, unit in (("produced to esa.raw (replay)", "produced", "Kafka records"),
                              ("worker", "worker_lines", "lines"),
                              ("worker output", "worker_records", "records"),
                              ("indexer, records", "indexed_records", "records"),
                              ("indexer, raw archive", "indexed_raw", "Kafka records"),
                              ("searchable", "searchable", "records")):
        average, best = stage_rate(samples, attr)
        print(f"  stage {label}: {average:,.0f} {unit}/s average while moving, best 5 s "
              f"{best:,.0f}")
    cpu = t["cpu"]
    total = sum(cpu.values())
    wall = max(t["archived"] or 0.0, t["done"]) - t["launched"]
    print("  CPU seconds during the run (wall " + f"{wall:.0f} s, 2 cores = {2 * wall:.0f} "
          "CPU-s): " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
          + f"; together {total:.1f}")
    return sustained


def report_latency(label: str, grace: float, lat: dict[str, Any], interval: float) -> None:
    delays = lat["delays"]
    print(f"latency, {label} (ESATRACK_GRACE_SECONDS={grace:g}), real-time lines at "
          f"{lat['rate']:,.0f} lines/s: `Message finished` line produced -> complete record "
          f"searchable, {len(delays):,} of {lat['expected']:,} messages measured")
    if delays:
        print(f"  p50 {pct(delays, 0.5):.2f} s, p95 {pct(delays, 0.95):.2f} s, "
              f"p99 {pct(delays, 0.99):.2f} s, max {delays[-1]:.2f} s "
              f"(poll every {interval:.2f} s, a search took {lat['poll_mean'] * 1000:.0f} ms "
              f"on average over {lat['polls']:,} polls)")
    parts = (("finish line produced -> complete record on the messages topic (worker)",
              lat["worker_part"]),
             ("that record -> searchable (indexer batch, bulk, refresh)", lat["index_part"]))
    for part_label, part in parts:
        if part:
            print(f"  of which {part_label}: p50 {pct(part, 0.5):.2f} s, "
                  f"p95 {pct(part, 0.95):.2f} s, p99 {pct(part, 0.99):.2f} s "
                  f"({len(part):,} messages)")
    if lat["batches"]:
        print(f"  indexer: {lat['batches']:,.0f} batches, {lat['batch_mean']:.3f} s on average "
              "from a batch's processing start to its commit (wait to fill not included)")
    print(f"  raw archive meanwhile: {lat['raw_indexed']:,.0f} records (links) holding the "
          f"{lat['lines']:,} lines" + ("" if lat["raw_indexed"] else " (off)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000,
                        help="connections of the mix for the throughput run (~27.5 lines each)")
    parser.add_argument("--mix-rate", type=float, default=200.0,
                        help="connections per second of log time in the throughput mix")
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument("--latency-rate", type=float,
                        help="lines/s of the latency runs (default: half the sustained rate)")
    parser.add_argument("--graces", default="10",
                        help="grace seconds of the latency runs, one run each")
    parser.add_argument("--poll", type=float, default=0.15, help="latency poll interval, s")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="longest wait for the throughput run, s")
    parser.add_argument("--no-archive", action="store_true",
                        help="the indexer indexes records only, no raw archive (production "
                             "archives every line; this shows what the archive costs)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--pack-bytes", type=int,
                        help="bound of the LF-packed values replay and the latency producer "
                             "ship (default: the setting; 0: one line per Kafka record)")
    parser.add_argument("--linger-ms", type=float, default=10.0,
                        help="latency part: how long an appliance's lines wait to be packed "
                             "together, as the receiver's packing linger (0: what arrives "
                             "together goes at once)")
    parser.add_argument("--mypyc", action="store_true",
                        help="run the worker on the core compiled as wheels ship it")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.mypyc:
            from bench.compiled import compiled_tree  # noqa: PLC0415 - only with --mypyc

            WORKER_ROOT[0] = stack.enter_context(compiled_tree())
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    def on_term(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_term)
    settings = load_settings()
    ensure_stack(settings)
    pack = settings.producer_pack_bytes if args.pack_bytes is None else args.pack_bytes
    work = Path(tempfile.mkdtemp(prefix="esatrack-bench-e2e-"))
    taken: set[str] = set()
    load0 = loadavg()
    sustained = 0.0
    load_mid = ""
    results: list[tuple[str, float, dict[str, Any]]] = []
    t: dict[str, Any] | None = None
    try:
        if not args.skip_throughput:
            with phase(settings, work, settings.grace_seconds, "throughput", taken,
                       archive=not args.no_archive, pack_bytes=pack) as ph:
                t = throughput(ph, args.messages, args.mix_rate, args.timeout)
            load_mid = loadavg()
        rate = args.latency_rate
        if not args.skip_latency:
            if rate is None:
                if t is None or t["done"] is None:
                    raise SystemExit("--latency-rate is needed without a finished throughput run")
                rate = t["lines"] / (t["done"] - t["first"]) / 2
            for grace in (float(g) for g in args.graces.split(",") if g.strip()):
                label = "default grace" if grace == settings.grace_seconds else f"grace {grace:g}"
                with phase(settings, work, grace, f"latency, {label}", taken,
                           archive=not args.no_archive, pack_bytes=pack,
                           linger_ms=args.linger_ms) as ph:
                    results.append((label, grace, latency(ph, rate, args.latency_seconds,
                                                          args.poll)))
    except KeyboardInterrupt:
        log("interrupted: cleaned up; no figures")
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores, load average (1, 5, 15 min) {load0} at start, "
          f"{loadavg()} at end; worker core "
          f"{'compiled (mypyc)' if WORKER_ROOT[0] != ROOT else 'interpreted (checkout)'}; "
          + (f"lines packed into values of up to {pack:,} bytes" if pack
             else "one line per Kafka record"))
    if t is not None:
        sustained = report_throughput(t, args.messages)
        print(f"  load average after the throughput run: {load_mid}")
    for label, grace, lat in results:
        report_latency(label, grace, lat, args.poll)
    if sustained:
        print(f"target 30,000 lines/s sustained: {'met' if sustained >= 30_000 else 'MISSED'} "
              f"({sustained:,.0f})")
    for label, grace, lat in results:
        if lat["delays"] and grace == settings.grace_seconds:
            p99 = pct(lat["delays"], 0.99)
            print(f"target p99 under 3 s, {label}: {'met' if p99 < 3.0 else 'MISSED'} "
                  f"({p99:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
