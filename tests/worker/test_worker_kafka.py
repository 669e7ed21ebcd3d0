"""Real `esatrack worker` processes against the real local Kafka: replay, crash, lost disk,
scale-out. The reference is always `esatrack correlate` over the same lines."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.mix import HOSTS, generate
from streams.ingest.pack import pack_lines
from streams.worker.processor import CONTEXT_PREFIX
from tests.worker.worker_helpers import (
    WorkerEnv,
    WorkerProcess,
    final_records,
    keyed_lines,
    offline_records,
    produce,
    read_topic,
    sample_files,
    untimed,
    wait_for_records,
    without_revision,
)

pytestmark = pytest.mark.integration


def mix_lines(
    tmp_path: Path, messages: int, seed: int, hosts: Sequence[str] = HOSTS
) -> tuple[list[tuple[bytes, bytes]], dict[str, dict[str, Any]]]:
    """A realistic stream (several appliances) and the records `esatrack correlate` makes of
    it (only records with a time: the others need an end of input, which a stream has not)."""
    lines = generate(messages, seed=seed, hosts=hosts)
    path = tmp_path / f"mix-{seed}.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    pairs = keyed_lines([path])
    assert {key for key, _line in pairs} == {host.encode() for host in hosts}
    offline = offline_records([path])
    return pairs, {rid: r for rid, r in offline.items() if not untimed(r)}


def wait_until(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def assert_same_records(got: dict[str, dict[str, Any]],
                        expected: dict[str, dict[str, Any]]) -> None:
    missing = sorted(set(expected) - set(got))
    assert not missing, f"{len(missing)} records missing, e.g. {missing[:5]}"
    differ = [rid for rid, record in expected.items()
              if without_revision(got[rid]) != without_revision(record)]
    assert not differ, f"{len(differ)} records differ, e.g. {differ[:5]}"
    assert set(got) <= set(expected) | {rid for rid, r in got.items() if untimed(r)}


def test_sample_replay_through_kafka_equals_esatrack_correlate(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    """Sample logs replayed through Kafka come out as `esatrack correlate` writes them."""
    files = sample_files()
    pairs = keyed_lines(files)
    offline = offline_records(files)
    timed = {rid: r for rid, r in offline.items() if not untimed(r)}
    worker = WorkerProcess(worker_env, tmp_path / "state", tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert produce(worker_env.bootstrap, worker_env.raw, pairs) == len(pairs)
        worker.wait_lines(len(pairs))
        got = wait_for_records(worker_env.bootstrap, worker_env, timed)
        assert_same_records({k: v for k, v in got.items() if k in timed}, timed)
        assert set(got) <= set(offline)
        unknown = worker.metric("esatrack_worker_unknown_lines_total")
        letters = read_topic(worker_env.bootstrap, [worker_env.unparsed], idle=2.0)
        assert unknown >= 1
        assert len(letters) == unknown
        assert all(orjson.loads(v or b"{}")["reason"] for _t, _p, _k, v in letters)
        for name in ("esatrack_worker_lines_total", "esatrack_worker_records_total",
                     "esatrack_worker_open_messages", "esatrack_worker_consumer_lag",
                     "esatrack_worker_processing_latency_seconds_count"):
            assert name in worker.get("/metrics")[1]
        assert worker.metric("esatrack_worker_lines_total") == len(pairs)
        assert worker.get("/healthz")[0] == 200
    finally:
        assert worker.stop() == 0, worker.tail()


def test_packed_values_are_processed_in_parts_of_the_configured_lines(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    """Values holding many lines (as the receiver and replay pack them): a batch is processed
    and produced in parts of about ESATRACK_WORKER_BATCH_LINES lines, not all at once, and
    the records are those of `esatrack correlate`."""
    limit = 1000
    worker_env.extra = {"ESATRACK_WORKER_BATCH_LINES": str(limit)}
    pairs, expected = mix_lines(tmp_path, 1200, seed=17)
    by_host: dict[bytes, list[bytes]] = {}
    for key, line in pairs:
        by_host.setdefault(key, []).append(line)
    values = [(key, value) for key, lines in by_host.items()
              for value, _count in pack_lines(lines, 16384)]
    biggest = max(value.count(b"\n") + 1 for _key, value in values)
    assert len(values) * 20 < len(pairs)  # packed: many lines per Kafka record
    worker = WorkerProcess(worker_env, tmp_path / "state", tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert produce(worker_env.bootstrap, worker_env.raw, values) == len(values)
        worker.wait_lines(len(pairs))
        got = wait_for_records(worker_env.bootstrap, worker_env, expected)
        assert_same_records(got, expected)
        parts = worker.metric("esatrack_worker_batch_lines_count")
        assert parts >= len(pairs) / (limit + biggest), (parts, len(pairs), biggest)
        assert worker.metric("esatrack_worker_batch_lines_sum") == len(pairs)
    finally:
        assert worker.stop() == 0, worker.tail()


def test_kill_9_in_mid_stream_then_a_new_worker_delivers_every_record(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    """A worker killed with SIGKILL mid-stream: its successor delivers every record."""
    pairs, expected = mix_lines(tmp_path, 1500, seed=11)
    first = WorkerProcess(worker_env, tmp_path / "state", tmp_path / "first.log")
    try:
        first.wait_ready()
        assert produce(worker_env.bootstrap, worker_env.raw, pairs) == len(pairs)
        wait_until(lambda: first.metric("esatrack_worker_lines_total") >= len(pairs) // 3,
                   "a third of the stream")
    finally:
        first.kill()
    partial = final_records(read_topic(worker_env.bootstrap,
                                       [worker_env.messages, worker_env.connections], idle=2.0))
    assert 0 < len(partial) < len(expected), "the kill must come in the middle of the stream"
    second = WorkerProcess(worker_env, tmp_path / "state", tmp_path / "second.log")
    try:
        second.wait_ready()
        got = wait_for_records(worker_env.bootstrap, worker_env, expected)
        assert_same_records(got, expected)
    finally:
        assert second.stop() == 0, second.tail()


def test_a_wiped_state_directory_is_rebuilt_from_the_changelog(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    """Lost disk: a worker on an empty state directory restores open state from the changelog."""
    pairs, expected = mix_lines(tmp_path, 600, seed=12)
    half = len(pairs) // 2
    state = tmp_path / "state"
    first = WorkerProcess(worker_env, state, tmp_path / "first.log")
    try:
        first.wait_ready()
        assert produce(worker_env.bootstrap, worker_env.raw, pairs[:half]) == half
        first.wait_lines(half)
        wait_until(lambda: first.metric("esatrack_worker_state_writes_total") > 0, "state")
    finally:
        first.kill()
    shutil.rmtree(state)
    assert produce(worker_env.bootstrap, worker_env.raw, pairs[half:]) == len(pairs) - half
    second = WorkerProcess(worker_env, state, tmp_path / "second.log")
    try:
        second.wait_ready()
        got = wait_for_records(worker_env.bootstrap, worker_env, expected)
        assert second.metric("esatrack_worker_restored_keys_total") > 0
        assert_same_records(got, expected)
    finally:
        assert second.stop() == 0, second.tail()


def test_two_workers_share_partitions_and_survive_one_stopping(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    """Scale-out: two workers, four partitions, six appliances; one stops; nothing is lost,
    and table state stays in the esa.raw partition of its appliance after the rebalance."""
    worker_env.partitions = 4
    hosts = [f"esa{i}.example.net" for i in range(1, 7)]
    pairs, expected = mix_lines(tmp_path, 1200, seed=13, hosts=hosts)
    half = len(pairs) // 2
    a = WorkerProcess(worker_env, tmp_path / "state-a", tmp_path / "a.log")
    b = WorkerProcess(worker_env, tmp_path / "state-b", tmp_path / "b.log")
    try:
        a.wait_ready()
        b.wait_ready()
        wait_until(lambda: a.metric("esatrack_worker_assigned_partitions") > 0
                   and b.metric("esatrack_worker_assigned_partitions") > 0,
                   "both workers to own partitions")
        assert produce(worker_env.bootstrap, worker_env.raw, pairs[:half]) == half
        wait_until(lambda: a.metric("esatrack_worker_lines_total")
                   + b.metric("esatrack_worker_lines_total") >= half, "the first half")
        assert a.metric("esatrack_worker_lines_total") > 0
        assert b.metric("esatrack_worker_lines_total") > 0
        assert b.stop() == 0, b.tail()
        assert produce(worker_env.bootstrap, worker_env.raw, pairs[half:]) == len(pairs) - half
        wait_until(lambda: a.metric("esatrack_worker_assigned_partitions") == 4,
                   "the survivor to own every partition")
        got = wait_for_records(worker_env.bootstrap, worker_env, expected)
        assert_same_records(got, expected)
    finally:
        assert a.stop() == 0, a.tail()
        b.stop()
    raw_partition = {key: partition for _t, partition, key, _v in
                     read_topic(worker_env.bootstrap, [worker_env.raw], idle=2.0)}
    changelog = read_topic(worker_env.bootstrap, [worker_env.changelog], idle=2.0)
    assert changelog
    for _topic, partition, key, _value in changelog:
        assert key is not None
        appliance = key.removeprefix(CONTEXT_PREFIX).split(b"|", 1)[0]
        assert raw_partition[appliance] == partition, (key, partition)


def test_a_worker_that_cannot_produce_stops_without_committing(
    worker_env: WorkerEnv, tmp_path: Path
) -> None:
    """Outputs before offsets: when Kafka refuses every output, the worker stops and no line
    is committed, so its replacement reads them all again."""
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415 - this test only
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - this test only
    from confluent_kafka.cimpl import NewTopic  # noqa: PLC0415 - this test only

    admin = AdminClient({"bootstrap.servers": worker_env.bootstrap})
    tiny = {"max.message.bytes": "64"}
    topics = [NewTopic(worker_env.raw, num_partitions=worker_env.partitions,
                       replication_factor=1)]
    for name, config in ((worker_env.messages, tiny), (worker_env.connections, tiny),
                         (worker_env.unparsed, tiny),
                         (worker_env.changelog, {**tiny, "cleanup.policy": "compact"})):
        topics.append(NewTopic(name, num_partitions=worker_env.partitions,
                               replication_factor=1, config=config))
    for future in admin.create_topics(topics).values():
        future.result(30)
    pairs = keyed_lines(sample_files())
    assert produce(worker_env.bootstrap, worker_env.raw, pairs) == len(pairs)
    worker = WorkerProcess(worker_env, tmp_path / "state", tmp_path / "worker.log")
    try:
        worker.proc.wait(120)
    finally:
        worker.kill()
    assert worker.proc.returncode != 0, worker.tail()
    assert "cannot produce to Kafka" in worker.log_path.read_text(errors="replace")
    consumer = Consumer({"bootstrap.servers": worker_env.bootstrap,
                         "group.id": worker_env.group, "enable.auto.commit": False})
    try:
        committed = consumer.committed(
            [TopicPartition(worker_env.raw, p) for p in range(worker_env.partitions)],
            timeout=30)
    finally:
        consumer.close()
    assert [tp.offset for tp in committed if tp.offset >= 0] == []
