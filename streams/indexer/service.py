"""The indexer's edges: a confluent-kafka consumer, an opensearch-py client, a dead-letter
producer, and the loop that ties them with the pure core (batching, routing, bulk sorting).

Order of a batch, which is what makes it at-least-once and idempotent at the sink:

1. route every record: an index action, a raw-archive action, or a dead letter (undecodable);
2. bulk-index until OpenSearch acknowledged every action (2xx, or 409: already applied);
   429/5xx/connection errors are retried forever with backoff, the consumer paused but polled so
   it keeps its partitions; per-item 4xx rejections become dead letters;
3. produce the dead letters and wait for their delivery reports;
4. commit, synchronously, the offsets after the batch.

A rebalance that takes away a partition of the batch abandons the batch without a commit: the
new owner re-reads it from the last commit and the deterministic ids make that harmless.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from streams.archive.chain import ChainBuilder, RawLine
from streams.archive.store import existing_ids, recover_head
from streams.indexer.backoff import Backoff
from streams.indexer.batch import Batcher, commit_offsets
from streams.indexer.bulk import (
    Action,
    BulkResult,
    classify,
    encode_bulk,
    retryable_status,
    split_by_id,
)
from streams.indexer.deadletter import encode_dead_letter
from streams.indexer.metrics import IndexerMetrics
from streams.indexer.raw import plan_raw, to_raw_line
from streams.indexer.records import DeadLetter, KafkaRecord, route_record
from streams.kafka_client import client_config
from streams.opensearch.client import make_client
from streams.opensearch.templates import init_cluster
from streams.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Position = tuple[str, int]
BULK_FILTER = "errors,items.*.status,items.*.error"
BulkReply = dict[str, Any] | TransportError


class Abandoned(Exception):
    """The current batch cannot be finished here (stopping, or its partitions were revoked)."""


def is_retryable(exc: BaseException) -> bool:
    """Whether an OpenSearch failure is worth retrying: no connection, 429, or a 5xx."""
    if isinstance(exc, OSConnectionError):
        return True
    if isinstance(exc, TransportError):
        status = exc.status_code
        return isinstance(status, int) and retryable_status(status)
    return False


def to_record(message: Message) -> KafkaRecord:
    """The plain-data copy of a consumed (error-free) message."""
    _kind, stamp = message.timestamp()
    return KafkaRecord(topic=message.topic() or "", partition=message.partition() or 0,
                       offset=message.offset() or 0, key=message.key(), value=message.value(),
                       timestamp_ms=stamp if stamp and stamp > 0 else None)


class Indexer:
    """Consume esa.messages, esa.connections and esa.raw; index into OpenSearch; commit after."""

    def __init__(self, settings: Settings, *, metrics: IndexerMetrics | None = None,
                 client: OpenSearch | None = None, group: str | None = None,
                 consumer_overrides: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.kinds = {settings.topic_messages: "messages",
                      settings.topic_connections: "connections",
                      settings.topic_raw: "raw"}
        self.group = group or settings.indexer_group
        self.client = client or make_client(settings, timeout=60)
        self.metrics = metrics or IndexerMetrics(
            stale_after=max(120.0, 3 * settings.indexer_backoff_max_seconds))
        self.batcher = Batcher(settings.indexer_batch_docs, settings.indexer_batch_bytes,
                               settings.indexer_batch_seconds)
        self.builder = ChainBuilder()
        self._consumer_overrides = consumer_overrides or {}
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._assigned: set[Position] = set()
        self._revoked: set[Position] = set()
        """Partitions revoked since the current batch was taken."""
        self._held: list[KafkaRecord] = []
        """Records polled while paused (kept for the next batch, never dropped)."""
        self._last_error_log = 0.0
        self._pool = ThreadPoolExecutor(max_workers=settings.indexer_bulk_concurrency,
                                        thread_name_prefix="indexer-bulk")

    # --- life cycle ---------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish: the current batch is completed if it can be, else abandoned
        without a commit (it will be re-read)."""
        self._stop.set()

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("Indexer.start() was not called")
        return self._consumer

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("Indexer.start() was not called")
        return self._producer

    def start(self) -> None:
        """Install templates (retrying until OpenSearch answers), make sure the topics exist,
        and subscribe."""
        self._retrying("opensearch init", lambda: init_cluster(self.client, self.settings),
                       Backoff(maximum=self.settings.indexer_backoff_max_seconds), poll=False)
        self._ensure_topics()
        config = client_config(self.settings)
        config.update({
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 100,
        })
        config.update(self._consumer_overrides)
        self._consumer = Consumer(config)
        producer_config = client_config(self.settings)
        producer_config.update({"acks": "all", "enable.idempotence": True, "linger.ms": 5})
        self._producer = Producer(producer_config)
        self.consumer.subscribe(list(self.kinds), on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_revoke)
        log.info("indexer: group %s consuming %s", self.group, ", ".join(self.kinds))

    def _ensure_topics(self) -> None:
        """Create missing input and dead-letter topics (a consumer subscribed to a missing topic
        would notice it only at the next metadata refresh)."""
        admin = AdminClient(client_config(self.settings))
        wanted = [*self.kinds, self.settings.topic_dead_letters]
        futures = admin.create_topics(
            [NewTopic(name, self.settings.topic_partitions, self.settings.topic_replication)
             for name in wanted], request_timeout=30)
        for name, future in futures.items():
            try:
                future.result()
                log.info("indexer: created topic %s", name)
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    log.warning("indexer: cannot create topic %s (%s); relying on broker "
                                "auto-creation", name, error.str())

    def run(self) -> None:
        """Start, then index until :meth:`stop`; close the clients on the way out."""
        self.start()
        try:
            while not self._stop.is_set():
                self.step()
            if len(self.batcher):
                self._process(self.batcher.take())
        finally:
            self.close()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
        self._pool.shutdown()
        self.client.close()

    # --- the loop -----------------------------------------------------------------------

    def step(self) -> None:
        """Poll once (up to the batch's time limit) and process the batch if it is full/old."""
        self.metrics.beat()
        while self._held and self.batcher.room():
            self.batcher.add(self._held.pop(0))
        room = self.batcher.room()
        if room:
            timeout = min(self.batcher.time_left(), 0.5)
            for message in self.consumer.consume(num_messages=min(room, 10_000), timeout=timeout):
                record = self._accept(message)
                if record is not None:
                    self.batcher.add(record)
        if self.batcher.ready():
            self._process(self.batcher.take())

    def _accept(self, message: Message) -> KafkaRecord | None:
        error = message.error()
        if error is None:
            return to_record(message)
        if error.fatal():
            raise KafkaException(error)
        now = time.monotonic()
        if now - self._last_error_log > 10:
            self._last_error_log = now
            log.warning("indexer: Kafka reports %s (continuing)", error.str())
        return None

    def _process(self, records: list[KafkaRecord]) -> None:
        begun = time.monotonic()
        self._revoked = set()
        try:
            letters, actions = self._route(records)
            letters += self._index(actions)
            self._dead_letter(letters)
            self._commit(records)
        except Abandoned as why:
            self.builder.forget()
            self._rewind(records)
            log.warning("indexer: batch of %d records abandoned uncommitted (%s); it will be "
                        "read again", len(records), why)
            return
        self.metrics.batch_seconds.observe(time.monotonic() - begun)
        self._update_lag()

    def _route(self, records: Sequence[KafkaRecord]) -> tuple[list[DeadLetter], list[Action]]:
        letters: list[DeadLetter] = []
        actions: list[Action] = []
        raw_pairs: list[tuple[KafkaRecord, RawLine]] = []
        for record in records:
            kind = self.kinds.get(record.topic)
            if kind is None:
                letters.append(DeadLetter(record, f"unexpected topic {record.topic}", "decode"))
                continue
            routed = (to_raw_line(record, self.settings.default_host) if kind == "raw"
                      else route_record(record, kind))
            if isinstance(routed, DeadLetter):
                letters.append(routed)
            elif isinstance(routed, RawLine):
                raw_pairs.append((record, routed))
            else:
                actions.append(routed)
        if raw_pairs:
            actions += self._retrying("opensearch archive lookup", lambda: self._plan(raw_pairs),
                                      self._backoff())
        return letters, actions

    def _plan(self, pairs: list[tuple[KafkaRecord, RawLine]]) -> list[Action]:
        for key in self.builder.unknown({line.key for _, line in pairs}):
            self.builder.set_head(key, recover_head(self.client, key))
        archived = existing_ids(self.client, [(line.index, line.doc_id) for _, line in pairs])
        plan = plan_raw(pairs, self.builder, archived)
        if plan.already:
            self.metrics.applied.labels("raw").inc(len(plan.already))
        return plan.actions

    # --- OpenSearch ---------------------------------------------------------------------

    def _bulk(self, actions: Sequence[Action]) -> dict[str, Any]:
        response: dict[str, Any] = self.client.bulk(body=encode_bulk(actions),
                                                    params={"filter_path": BULK_FILTER})
        return response

    def _send(self, actions: list[Action]) -> list[tuple[list[Action], BulkReply]]:
        """Send ``actions`` as up to ``indexer_bulk_concurrency`` bulk requests in parallel
        (OpenSearch indexes one request per write thread); each reply or TransportError is
        paired with the actions of its request."""
        chunks = split_by_id(actions, self.settings.indexer_bulk_concurrency)

        def send(chunk: list[Action]) -> tuple[list[Action], BulkReply]:
            try:
                return chunk, self._bulk(chunk)
            except TransportError as exc:
                return chunk, exc

        if len(chunks) == 1:
            return [send(chunks[0])]
        return list(self._pool.map(send, chunks))

    def _index(self, actions: list[Action]) -> list[DeadLetter]:
        """Index until every action is acknowledged; return the ones OpenSearch rejected."""
        letters: list[DeadLetter] = []
        pending = actions
        backoff = self._backoff()
        while pending:
            self._check()
            retry: list[Action] = []
            cause, reason = "", ""
            for chunk, reply in self._send(pending):
                if isinstance(reply, TransportError):
                    if is_retryable(reply):
                        retry += chunk
                        cause, reason = "opensearch", str(reply)
                    elif len(chunk) > 1:  # a request-level refusal: find the culprit by halving
                        half = len(chunk) // 2
                        letters += self._index(chunk[:half]) + self._index(chunk[half:])
                    else:
                        letters.append(DeadLetter(
                            chunk[0].origin,
                            f"bulk request refused: {reply.status_code} {reply.error}", "index"))
                    continue
                result = classify(chunk, reply)
                self._count(result)
                letters += [DeadLetter(action.origin, why, "index")
                            for action, why in result.rejected]
                if result.retry:
                    retry += [action for action, _why in result.retry]
                    cause = cause or "opensearch items"
                    reason = reason or f"{len(result.retry)} documents: {result.retry[0][1]}"
            pending = retry
            if pending:
                self._wait(cause, reason, backoff)
        self.metrics.outage = None
        return letters

    def _count(self, result: BulkResult) -> None:
        for action in result.indexed:
            self.metrics.indexed.labels(action.kind).inc()
        for action in result.applied:
            self.metrics.applied.labels(action.kind).inc()
        for action, reason in result.rejected:
            if action.kind == "raw":
                log.error("indexer: raw line %s/%s refused (%s): its chain link is missing",
                          action.index, action.doc_id, reason)

    # --- Kafka --------------------------------------------------------------------------

    def _dead_letter(self, letters: list[DeadLetter]) -> None:
        """Produce the dead letters and wait until Kafka acknowledged each of them."""
        pending = letters
        backoff = self._backoff()
        while pending:
            failed: list[DeadLetter] = []
            for letter in pending:
                self._produce(letter, failed)
            while self.producer.flush(0.5) > 0:
                self._keepalive()
            if failed:
                pending = failed
                self._wait("kafka dead letters", f"{len(failed)} not delivered", backoff)
                continue
            pending = []
        for letter in letters:
            kind = self.kinds.get(letter.record.topic, "unknown")
            self.metrics.dead_lettered.labels(kind, letter.stage).inc()
        if letters:
            first = letters[0]
            log.warning("indexer: %d records dead-lettered to %s (first: %s/%d/%d: %s)",
                        len(letters), self.settings.topic_dead_letters, first.record.topic,
                        first.record.partition, first.record.offset, first.reason)

    def _produce(self, letter: DeadLetter, failed: list[DeadLetter]) -> None:
        key, value, headers = encode_dead_letter(letter)

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failed.append(letter)

        while True:
            try:
                self.producer.produce(self.settings.topic_dead_letters, value=value, key=key,
                                      headers=headers, on_delivery=delivered)
                return
            except BufferError:
                self.producer.poll(0.1)

    def _commit(self, records: Sequence[KafkaRecord]) -> None:
        self._check()
        offsets = [TopicPartition(topic, partition, offset)
                   for (topic, partition), offset in commit_offsets(records).items()
                   if (topic, partition) in self._assigned]
        if not offsets:
            return
        backoff = self._backoff()
        while True:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                error = exc.args[0]
                if error.retriable():
                    self._wait("kafka commit", error.str(), backoff)
                    continue
                raise Abandoned(f"commit refused: {error.str()}") from None
            self.metrics.last_commit.set_to_current_time()
            return

    def _update_lag(self) -> None:
        assignment = [TopicPartition(t, p) for t, p in self._assigned]
        if not assignment:
            return
        for tp in self.consumer.position(assignment):
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(high - tp.offset)

    # --- waiting without losing the partitions -----------------------------------------

    def _backoff(self) -> Backoff:
        return Backoff(maximum=self.settings.indexer_backoff_max_seconds)

    def _check(self) -> None:
        if self._stop.is_set():
            raise Abandoned("stopping")
        if self._revoked:
            raise Abandoned(f"partitions revoked: {sorted(self._revoked)}")

    def _wait(self, cause: str, detail: str, backoff: Backoff) -> None:
        delay = backoff.next_delay()
        self.metrics.retries.labels(cause).inc()
        self.metrics.outage = f"{cause}: {detail}"
        log.warning("indexer: %s failed (%s); attempt %d, retrying in %.1fs; offsets stay at "
                    "the last acknowledged batch", cause, detail, backoff.attempts, delay)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            self._keepalive(min(0.2, max(0.0, deadline - time.monotonic())))
            self._check()

    def _keepalive(self, timeout: float = 0.0) -> None:
        """Poll with every partition paused: the group keeps us, nothing new is fetched."""
        self.metrics.beat()
        if self._consumer is None:
            time.sleep(timeout)
            return
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)
        for message in self.consumer.consume(num_messages=100, timeout=timeout):
            record = self._accept(message)
            if record is not None:
                self._held.append(record)
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.resume(assignment)

    def _retrying(self, cause: str, call: Callable[[], T], backoff: Backoff,
                  poll: bool = True) -> T:
        while True:
            if poll:
                self._check()
            elif self._stop.is_set():
                raise Abandoned("stopping")
            try:
                result = call()
            except TransportError as exc:
                if not is_retryable(exc):
                    raise
                self._wait(cause, str(exc), backoff)
                continue
            self.metrics.outage = None
            return result

    def _rewind(self, records: Sequence[KafkaRecord]) -> None:
        """Seek still-owned partitions of an abandoned batch back to its first records."""
        first: dict[Position, int] = {}
        for record in records:
            first[record.position] = min(first.get(record.position, record.offset),
                                         record.offset)
        for position, offset in first.items():
            if position in self._assigned and position not in self._revoked:
                self._held = [r for r in self._held if r.position != position]
                self.batcher.drop({position})
                try:
                    self.consumer.seek(TopicPartition(*position, offset))
                except KafkaException as exc:
                    log.warning("indexer: cannot rewind %s to %d (%s)", position, offset, exc)

    # --- rebalance callbacks (called from within consume) ------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.assigned = len(self._assigned)
        log.info("indexer: assigned %s", sorted(self._assigned))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned -= gone
        self._revoked |= gone
        self.metrics.assigned = len(self._assigned)
        self.builder.forget()
        self.batcher.drop(gone)
        self._held = [r for r in self._held if r.position not in gone]
        for topic, partition in gone:
            with contextlib.suppress(KeyError):  # no lag was recorded for it yet
                self.metrics.lag.remove(topic, str(partition))
        log.info("indexer: revoked %s", sorted(gone))
