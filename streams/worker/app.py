"""The faust edge: the only module that imports faust.

:func:`create_app` builds a faust app from the settings (nothing happens at import time):

- the topics (raw bytes in and out: we encode ourselves, see :mod:`streams.worker.codec`),
- the ``correlation`` table (RocksDB via rocksdict, changelog ``<group>-correlation-changelog``)
  holding the correlation engine's exported per-key state,
- one agent that takes raw lines in batches and hands them to one
  :class:`~streams.worker.processor.PartitionProcessor` per ``esa.raw`` partition,
- a timer that lets the engines emit what waited for its grace period or expired,
- the health/metrics endpoint.

How at-least-once holds (verified against faust 0.15.3's source and by the crash tests):

1. For each batch the agent sends every record and dead letter with the producer's ``send``
   and **awaits every acknowledgement**; only then does it write the changed state to RocksDB
   and the changelog, and await those acknowledgements too; only then are the batch's events
   acked to faust. (Records before state: see ``Pipeline._emit``.) If anything fails, or the
   agent is cancelled in the middle of a batch, the process exits at once (``_abort``),
   because ``take_events`` would ack the batch in its ``finally`` and faust would commit it.
2. faust commits only the offsets of acked events (``Consumer._new_offset``), and flushes the
   producer before committing (``Consumer._commit_offsets``: ``producer.flush()`` then commit).
   We do not rely on that flush alone: faust's own buffer flush (``ProducerBuffer.flush``) gives
   up after 0.1 s without a send, and a failed send would not stop the commit. Step 1 makes the
   order "outputs acked, then offsets committed" hold by construction.
3. A crash after the records but before the commit re-delivers lines whose effects may
   already be in the changelog; the engine is idempotent under duplicates, so the replay
   rewrites the same records (same ids) and at most adds revisions. Because the state is
   written after its records, no saved state can claim a revision that never reached Kafka.

Why we write the table's store and changelog ourselves instead of ``table[key] = value``:
faust picks the partition of a table write from the *current event* (a context variable).
Inside ``stream.take_events`` that is not the event whose key we write, and a batch mixes
partitions, so ``table[key]`` would file state under the wrong partition. We write each
changed key explicitly to partition *p* of the changelog and of the RocksDB store, where *p*
is the ``esa.raw`` partition the line came from: the table stays co-partitioned with
``esa.raw`` by construction (and the topics module refuses a changelog with another partition
count). faust still owns everything else: the RocksDB files per partition, recovery from the
changelog on assignment (the lost-disk case), standby replicas, persisted changelog offsets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import faust
from aiokafka.partitioner import murmur2
from faust.types import TP
from mode import Service
from rocksdict import WriteBatch

from streams.errors import ConfigError
from streams.settings import Settings
from streams.worker.metrics import HealthServer, Readiness, WorkerMetrics, health_app
from streams.worker.processor import Output, RawLine
from streams.worker.topics import TABLE_NAME, changelog_topic

log = logging.getLogger(__name__)

AGENT_NAME = "esatrack.worker.correlate"
EXIT_ABORTED = 75
"""Exit status of a worker that stopped itself because outputs could not be produced."""


class Processor(Protocol):
    """What the worker needs of a partition's processor (see ``streams.worker.processor``)."""

    def process(self, lines: Sequence[RawLine]) -> Output: ...

    def tick(self, now: float) -> Output: ...

    def load(self, items: Iterator[tuple[bytes, bytes]]) -> int: ...

    def open_counts(self) -> tuple[int, int]: ...


ProcessorFactory = Callable[[int], Processor]
"""Builds the processor of one ``esa.raw`` partition (the argument) with an empty engine."""


# ---------------------------------------------------------------------------------------------
# Settings -> faust configuration (pure)
# ---------------------------------------------------------------------------------------------


def broker_urls(settings: Settings) -> list[str]:
    """``kafka://host:port`` URLs of the bootstrap servers."""
    hosts = [h.strip() for h in settings.kafka_bootstrap.split(",") if h.strip()]
    if not hosts:
        raise ConfigError("ESATRACK_KAFKA_BOOTSTRAP is empty: give host:port[,host:port...]")
    return [h if "://" in h else f"kafka://{h}" for h in hosts]


def broker_credentials(settings: Settings) -> faust.auth.Credentials | None:
    """The faust credentials for the configured security protocol (secrets passed, not logged)."""
    protocol = settings.kafka_security_protocol.upper()
    context: ssl.SSLContext | None = None
    if protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password is not None else None,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    raise ConfigError(
        f"ESATRACK_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol!r} is not one of "
        "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
    )


def faust_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``faust.App`` for these settings."""
    return {
        "broker": broker_urls(settings),
        "broker_credentials": broker_credentials(settings),
        "store": "rocksdb://",
        "datadir": str(settings.state_dir),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "processing_guarantee": "at_least_once",
        # a new group starts at the beginning of esa.raw: nothing shipped is skipped
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "producer_linger": 0.005,
        # a batch's records and state go out together: larger per-partition batches mean
        # fewer produce requests (the default 16 KiB split them into many)
        "producer_max_batch_size": 256 * 1024,
        "stream_buffer_maxsize": max(4096, 2 * settings.worker_batch_size),
        "web_enabled": False,  # our own endpoint serves /metrics, /healthz and /readyz
        "autodiscover": False,
        "worker_redirect_stdouts": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }


# ---------------------------------------------------------------------------------------------
# The pipeline: processors per partition, table writes, outputs
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Topics:
    messages: str
    connections: str
    unparsed: str
    changelog: str
    raw: str


class Pipeline:
    """One worker's processors and the code that moves their outputs to Kafka."""

    def __init__(
        self,
        app: faust.App,
        table: Any,
        settings: Settings,
        metrics: WorkerMetrics,
        make_processor: ProcessorFactory,
    ) -> None:
        self.app = app
        self.table = table
        self.metrics = metrics
        self.make_processor = make_processor
        self.batch_lines = settings.worker_batch_lines
        self.topics = _Topics(
            messages=settings.topic_messages,
            connections=settings.topic_connections,
            unparsed=settings.topic_unparsed,
            changelog=changelog_topic(settings),
            raw=settings.topic_raw,
        )
        self.processors: dict[int, Processor] = {}
        self.next_offsets: dict[int, int] = {}
        self._lock: asyncio.Lock | None = None

    @property
    def lock(self) -> asyncio.Lock:
        """Serialises the agent and the timer: both change the same engines and keys."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # --- state ------------------------------------------------------------------------------

    def _store(self) -> Any:
        return self.table.data

    def _db(self, partition: int) -> Any:
        # faust's RocksDB store keeps one database per partition; `_db_for_partition` opens
        # (or returns) it. Private in faust, used here only, covered by the lost-disk test.
        return self._store()._db_for_partition(partition)

    def processor(self, partition: int) -> Processor:
        """The partition's processor, restored from the table the first time it is needed."""
        found = self.processors.get(partition)
        if found is not None:
            return found
        processor = self.make_processor(partition)
        store = self._store()
        items = store._visible_items(self._db(partition))  # skips faust's offset key
        restored = processor.load(iter(items))
        self.metrics.restored_keys.inc(restored)
        log.info("partition %d: restored %d state keys from the table", partition, restored)
        self.processors[partition] = processor
        return processor

    def drop(self, partitions: Sequence[int]) -> None:
        """Forget the engines of revoked partitions (their state lives on in the changelog)."""
        for partition in partitions:
            if self.processors.pop(partition, None) is not None:
                log.info("partition %d revoked: engine dropped", partition)
            self.next_offsets.pop(partition, None)

    # --- outputs ----------------------------------------------------------------------------

    async def _emit(self, outputs: Sequence[tuple[int, Output]]) -> None:
        """Produce outputs in two acknowledged steps: first the records and dead letters,
        then the changed state (RocksDB and changelog).

        The order matters for a crash in between: state saying "revision N emitted" must never
        be durable while revision N itself is not, or the replayed lines (duplicates to the
        engine) would not emit it again. Records first, so a crash between the steps only
        repeats a revision."""
        topics = self.topics
        records = _Batches(self.app)
        for _partition, out in outputs:
            await records.add_keyed(topics.messages, out.messages)
            await records.add_keyed(topics.connections, out.connections)
            await records.add_keyed(topics.unparsed, out.dead_letters)
        await records.acknowledged()
        state = _Batches(self.app)
        for partition, out in outputs:
            if not out.state:
                continue
            batch = WriteBatch(raw_mode=True)
            for key, value in out.state.items():
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
                await state.add(topics.changelog, partition, key, value)
            self._db(partition).write(batch)
        for (_topic, partition), last in (await state.acknowledged()).items():
            self._store().set_persisted_offset(TP(topics.changelog, partition), last)
        m = self.metrics
        for _partition, out in outputs:
            if out.messages:
                m.records_out.labels(topics.messages).inc(len(out.messages))
            if out.connections:
                m.records_out.labels(topics.connections).inc(len(out.connections))
            if out.unknown:
                m.unknown_lines.inc(out.unknown)
            if out.state:
                m.state_writes.inc(len(out.state))
            if out.lines:
                m.lines_in.inc(out.lines)

    def _abort(self, exc: BaseException) -> NoReturn:
        """Leave the process at once, like ``kill -9``.

        A batch whose outputs were not all acknowledged must not be acked to faust, and
        ``take_events`` acks its batch in a ``finally`` whatever happened in the body (an
        exception or a cancellation included); faust would then commit those offsets on the
        way out and the lines' records could be lost. Exiting here skips all of that: the
        replacement resumes from the last committed offsets and the changelog."""
        if isinstance(exc, asyncio.CancelledError):
            log.critical("stopped in the middle of a batch: exiting without committing it")
        else:
            log.critical("cannot produce to Kafka (%r): exiting without committing; a restart "
                         "resumes from the last committed offsets", exc)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_ABORTED)

    async def handle(self, events: Sequence[Any]) -> None:
        """Process one batch of ``esa.raw`` events; a failure ends the process (no commit)."""
        try:
            await self._handle(events)
        except BaseException as exc:  # cancellation too: see _abort
            self._abort(exc)

    async def _handle(self, events: Sequence[Any]) -> None:
        """Process a batch in parts of about ``worker_batch_lines`` lines (a packed Kafka record
        holds many), each produced and acknowledged before the next is processed."""
        limit = self.batch_lines
        part: list[Any] = []
        lines = 0
        oldest = time.time()
        for event in events:
            msg = event.message
            oldest = min(oldest, msg.timestamp)
            part.append(msg)
            value = msg.value
            lines += value.count(b"\n") + 1 if value else 1
            if lines >= limit:
                await self._handle_part(part)
                part, lines = [], 0
        if part:
            await self._handle_part(part)
        self.metrics.processing_latency.observe(max(0.0, time.time() - oldest))
        self._update_open()

    async def _handle_part(self, messages: Sequence[Any]) -> None:
        by_partition: dict[int, list[RawLine]] = {}
        for msg in messages:
            lines = by_partition.get(msg.partition)
            if lines is None:
                lines = by_partition[msg.partition] = []
            # one per Kafka message: the processor reads a batching shipper's LF-separated lines
            lines.append(RawLine(msg.key, msg.value, msg.timestamp, msg.offset))
        async with self.lock:
            outputs = [(partition, self.processor(partition).process(lines))
                       for partition, lines in by_partition.items()]
            await self._emit(outputs)
            for partition, lines in by_partition.items():
                self.next_offsets[partition] = lines[-1].offset + 1
        self.metrics.batch_size.observe(sum(out.lines for _partition, out in outputs))

    async def tick(self) -> None:
        """Let every engine emit what its grace or expiry released; refresh the gauges."""
        if not self.ready().ready:
            return
        now = time.time()
        try:
            async with self.lock:
                outputs = [(partition, self.processor(partition).tick(now))
                           for partition in self.assigned()]
                await self._emit([(p, out) for p, out in outputs
                                  if out.messages or out.connections or out.state])
        except asyncio.CancelledError:
            raise  # the timer's outputs carry no offsets: a stop here loses nothing
        except Exception as exc:
            self._abort(exc)
        self._update_open()
        self._update_lag()

    # --- status -----------------------------------------------------------------------------

    def assigned(self) -> list[int]:
        """The ``esa.raw`` partitions this worker processes now."""
        actives = self.app.assignor.assigned_actives()
        return sorted(tp.partition for tp in actives if tp.topic == self.topics.raw)

    def ready(self) -> Readiness:
        """Ready: started, no rebalance in progress, table recovery done."""
        app = self.app
        if not app.started or app.should_stop:
            return Readiness(False, "starting" if not app.started else "stopping")
        if app.rebalancing:
            return Readiness(False, "rebalancing")
        recovery: Any = app.tables.recovery  # type: ignore[attr-defined]  # on the concrete TableManager only
        if app.in_recovery or not recovery.completed.is_set():
            return Readiness(False, "recovering table state from the changelog")
        return Readiness(True)

    def _update_open(self) -> None:
        messages = connections = 0
        for processor in self.processors.values():
            m, c = processor.open_counts()
            messages += m
            connections += c
        self.metrics.open_messages.set(messages)
        self.metrics.open_connections.set(connections)

    def _update_lag(self) -> None:
        assigned = self.assigned()
        self.metrics.assigned_partitions.set(len(assigned))
        consumer = self.app.consumer
        for partition in assigned:
            next_offset = self.next_offsets.get(partition)
            if next_offset is None:
                continue
            highwater = consumer.highwater(TP(self.topics.raw, partition))
            if highwater is not None:
                lag = max(0, highwater - next_offset)
                self.metrics.consumer_lag.labels(str(partition)).set(lag)


class _Batches:
    """Records bound for Kafka, packed into aiokafka batches, one open batch per partition.

    Cheaper than faust's ``producer.send`` per record (a future, a partition lookup and an
    accumulator round per record: ~14% of a worker's CPU in the profile): a worker batch's
    records are appended to per-partition batches, each submitted with ``send_batch`` when
    full or at :meth:`acknowledged`, which awaits every one. Records keyed by id go to the
    partition the default partitioner would choose (murmur2 of the key), as with ``send``,
    so a record's revisions stay in one partition. The batches are submitted in order per
    partition, and the producer's flush before a commit covers them like any other send."""

    def __init__(self, app: faust.App) -> None:
        # faust's aiokafka producer (private accessor; the crash tests cover this path)
        self._producer: Any = app.producer._ensure_producer()  # type: ignore[attr-defined]  # on faust's aiokafka Producer only
        self._open: dict[tuple[str, int], Any] = {}
        self._sent: list[tuple[tuple[str, int], Awaitable[Any], int]] = []

    async def add_keyed(self, topic: str, pairs: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Add records to the partitions their keys hash to."""
        if not pairs:
            return
        partitions = sorted(await self._producer.partitions_for(topic))
        count = len(partitions)
        for key, value in pairs:
            partition = (partitions[(murmur2(key) & 0x7FFFFFFF) % count] if key is not None
                         else partitions[0])
            await self.add(topic, partition, key, value)

    async def add(self, topic: str, partition: int, key: bytes | None,
                  value: bytes | None) -> None:
        """Add one record to a partition (``None`` value: a tombstone)."""
        tp = (topic, partition)
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = self._producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is not None:
            return
        await self._submit(tp, batch)
        batch = self._open[tp] = self._producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            # aiokafka takes any record into an empty batch: this is a broken invariant
            raise RuntimeError(f"a fresh producer batch refused a record for {topic}")

    async def _submit(self, tp: tuple[str, int], batch: Any) -> None:
        batch.close()
        future = await self._producer.send_batch(batch, tp[0], partition=tp[1])
        self._sent.append((tp, future, batch.record_count()))

    async def acknowledged(self) -> dict[tuple[str, int], int]:
        """Submit the open batches, await every acknowledgement; the last offset written
        per partition."""
        for tp, batch in self._open.items():
            if batch.record_count():
                await self._submit(tp, batch)
        self._open.clear()
        last: dict[tuple[str, int], int] = {}
        if self._sent:
            metas = await asyncio.gather(*(future for _tp, future, _n in self._sent))
            for (tp, _future, n), meta in zip(self._sent, metas, strict=True):
                last[tp] = max(last.get(tp, -1), meta.offset + n - 1)
        self._sent.clear()
        return last


class _HealthService(Service):
    """Runs the health/metrics endpoint as part of the faust worker."""

    def __init__(self, server: HealthServer, **kwargs: Any) -> None:
        self._server = server
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self._server.start()

    async def on_stop(self) -> None:
        await self._server.stop()


@dataclass(slots=True)
class WorkerApp:
    """A built worker: the faust app, its pipeline, and the services to run beside it."""

    app: faust.App
    pipeline: Pipeline
    metrics: WorkerMetrics
    settings: Settings
    services: list[Service]

    def run(self) -> None:
        """Run the worker until SIGINT/SIGTERM (blocks; exits the process when done).

        Two things for throughput (measured in ``docs/PERFORMANCE.md``): the uvloop event
        loop (faust's inner loop is tasks and futures per Kafka message, which uvloop runs
        in C), and no terminal spinner: faust's spinner sets the root logger to DEBUG so it
        can spin on every record, which makes aiokafka build a debug record per produced
        message and per network frame (~7% of a worker's CPU), at any configured level."""
        use_uvloop()
        worker = faust.Worker(
            self.app,
            *self.services,
            loglevel=self.settings.log_level,
            quiet=True,
            redirect_stdouts=False,
        )
        worker.spinner = None  # see above: keeps the root logger at the configured level
        worker.execute_from_commandline()


def use_uvloop() -> None:
    """Run the worker's event loop on uvloop (a faster drop-in asyncio loop)."""
    import uvloop  # noqa: PLC0415  # only a running worker needs it

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def create_app(
    settings: Settings,
    make_processor: ProcessorFactory,
    *,
    raw_partitions: int | None = None,
    metrics: WorkerMetrics | None = None,
    health_host: str = "0.0.0.0",  # the endpoint is meant to be scraped
) -> WorkerApp:
    """Build (not start) a worker app. ``raw_partitions``: the actual count of ``esa.raw``."""
    metrics = metrics if metrics is not None else WorkerMetrics()
    partitions = raw_partitions or settings.topic_partitions
    app = faust.App(settings.worker_group, **faust_options(settings))
    raw = app.topic(
        settings.topic_raw,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        replicas=settings.topic_replication,
    )
    table = app.Table(
        TABLE_NAME,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        options={"driver": "rocksdict"},
        help="The correlation engine's state, one entry per exported key.",
    )
    pipeline = Pipeline(app, table, settings, metrics, make_processor)
    batch_size, batch_seconds = settings.worker_batch_size, settings.worker_batch_seconds

    async def correlate(stream: Any) -> None:
        async for events in stream.take_events(batch_size, within=batch_seconds):
            await pipeline.handle(events)

    app.agent(raw, name=AGENT_NAME)(correlate)

    async def tick() -> None:
        await pipeline.tick()

    app.timer(settings.worker_tick_seconds, name="esatrack.worker.tick")(tick)

    async def on_revoked(_sender: Any, /, *args: Any, signal: Any, **_kwargs: Any) -> None:
        revoked: set[TP] = args[0]
        async with pipeline.lock:
            pipeline.drop([tp.partition for tp in revoked if tp.topic == settings.topic_raw])

    app.on_partitions_revoked.connect(on_revoked)

    services: list[Service] = []
    if settings.metrics_port:
        server = HealthServer(health_app(metrics, pipeline.ready), health_host,
                              settings.metrics_port)
        services.append(_HealthService(server))
    return WorkerApp(app, pipeline, metrics, settings, services)
