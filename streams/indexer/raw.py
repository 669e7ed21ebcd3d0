"""esa.raw records to raw-archive actions: chained per appliance and day. Pure, given the chain
heads and the set of lines already archived (both looked up by the service)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from streams.archive.chain import ChainBuilder, RawLine
from streams.indexer.bulk import Action
from streams.indexer.records import DeadLetter, KafkaRecord


def to_raw_line(record: KafkaRecord, default_host: str) -> RawLine | DeadLetter:
    """The raw line of an esa.raw record: key = appliance (default when absent), receive time =
    the Kafka timestamp (the consumption time if the record has none)."""
    if not record.value:
        return DeadLetter(record, "empty raw line: nothing to archive", "decode")
    host = record.key.decode("utf-8", errors="replace") if record.key else default_host
    received = record.timestamp_ms if record.timestamp_ms and record.timestamp_ms > 0 else int(
        time.time() * 1000)
    return RawLine(host=host, received_ms=received, partition=record.partition,
                   offset=record.offset, line=record.value, topic=record.topic)


@dataclass(frozen=True)
class RawPlan:
    """The archive actions of a batch and the lines skipped because they are archived already."""

    actions: list[Action]
    already: list[RawLine]


def plan_raw(pairs: Sequence[tuple[KafkaRecord, RawLine]], builder: ChainBuilder,
             archived: Iterable[tuple[str, str]]) -> RawPlan:
    """Chain the lines not yet archived, in order; every chain's head must be known to
    ``builder``. A redelivered line (its (index, id) in ``archived``) is skipped, so the chain
    does not fork."""
    done = set(archived)
    actions: list[Action] = []
    already: list[RawLine] = []
    for record, line in pairs:
        if (line.index, line.doc_id) in done:
            already.append(line)
            continue
        done.add((line.index, line.doc_id))  # a line redelivered within the batch: once only
        doc = builder.append(line)
        actions.append(Action(kind="raw", index=line.index, doc_id=line.doc_id,
                              source=orjson.dumps(doc), origin=record, op="create"))
    return RawPlan(actions, already)
