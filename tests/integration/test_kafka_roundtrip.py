"""Records go through the real local broker and come back intact, with both Kafka clients."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.integration

RECORDS = [(f"key-{i}".encode(), f"value-{i}-{uuid.uuid4().hex}".encode()) for i in range(5)]


def test_confluent_kafka_round_trip(
    kafka_bootstrap: str, new_topic: Callable[..., str], new_group: Callable[[], str]
) -> None:
    """Records produced with confluent-kafka are consumed in order, keys and values intact."""
    topic = new_topic()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for key, value in RECORDS:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    consumer = Consumer({
        "bootstrap.servers": kafka_bootstrap, "group.id": new_group(),
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    received: list[tuple[bytes | None, bytes | None]] = []
    try:
        for _ in range(60):
            if len(received) == len(RECORDS):
                break
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            received.append((message.key(), message.value()))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert received == RECORDS


async def _aiokafka_round_trip(bootstrap: str, topic: str, group: str) -> list[tuple[bytes, bytes]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in RECORDS:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            async for message in consumer:
                received.append((message.key, message.value))
                if len(received) == len(RECORDS):
                    break
        await consumer.commit()
    finally:
        await consumer.stop()
    return received


def test_aiokafka_round_trip(
    kafka_bootstrap: str, new_topic: Callable[..., str], new_group: Callable[[], str]
) -> None:
    """Records produced with aiokafka (faust's client) are consumed by a group and committed."""
    received = asyncio.run(_aiokafka_round_trip(kafka_bootstrap, new_topic(), new_group()))
    assert received == RECORDS


def test_clients_interoperate(
    kafka_bootstrap: str, new_topic: Callable[..., str], new_group: Callable[[], str]
) -> None:
    """What confluent-kafka produces, aiokafka consumes unchanged (our ingest -> faust path)."""
    topic = new_topic(partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for key, value in RECORDS:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    async def consume() -> list[tuple[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=new_group(),
            auto_offset_reset="earliest",
        )
        await consumer.start()
        received: list[tuple[bytes, bytes]] = []
        try:
            async with asyncio.timeout(60):
                async for message in consumer:
                    received.append((message.key, message.value))
                    if len(received) == len(RECORDS):
                        break
        finally:
            await consumer.stop()
        return received

    assert sorted(asyncio.run(consume())) == sorted(RECORDS)
