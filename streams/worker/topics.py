"""The workers' topic layout, and its creation with explicit partitions and replication.

faust would create missing topics on its own, with whatever partition count it guesses; we
create ours first, explicitly, so that the layout is the settings' and not an accident:

- ``esa.raw`` (key: appliance, value: the raw line as shipped),
- ``esa.messages`` and ``esa.connections`` (key: record id, value: the record as JSON),
- ``esa.unparsed`` (dead letters: key appliance, value JSON with the reason and the raw line),
- the correlation table's changelog ``<worker_group>-correlation-changelog``: compacted, and
  with exactly as many partitions as ``esa.raw``, because partition *n* of the changelog holds
  the state of the appliances whose lines are in partition *n* of ``esa.raw``.

If ``esa.raw`` already exists (a shipper created it), its partition count wins for the
changelog. A changelog whose count differs from ``esa.raw`` is refused with what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.errors import ConfigError, ServiceUnavailable
from streams.kafka_client import client_config
from streams.settings import Settings

TABLE_NAME = "correlation"
"""Name of the faust table that holds the correlation engine's per-key state."""


def changelog_topic(settings: Settings) -> str:
    """The changelog topic faust derives for the correlation table."""
    return f"{settings.worker_group}-{TABLE_NAME}-changelog"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as the workers need it."""

    name: str
    partitions: int
    replication: int
    config: Mapping[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings, raw_partitions: int | None = None) -> list[TopicSpec]:
    """The topics of the workers; ``raw_partitions`` is the count of an existing ``esa.raw``."""
    partitions = raw_partitions or settings.topic_partitions
    replication = settings.topic_replication
    return [
        TopicSpec(settings.topic_raw, partitions, replication),
        TopicSpec(settings.topic_messages, settings.topic_partitions, replication),
        TopicSpec(settings.topic_connections, settings.topic_partitions, replication),
        TopicSpec(settings.topic_unparsed, settings.topic_partitions, replication),
        TopicSpec(
            changelog_topic(settings),
            partitions,
            replication,
            {"cleanup.policy": "compact"},
        ),
    ]


def ensure_topics(settings: Settings, *, timeout: float = 30.0) -> list[str]:
    """Create the missing topics; check the changelog is co-partitioned with ``esa.raw``.

    Returns the names of the topics that were created. Raises :class:`ServiceUnavailable`
    when the brokers do not answer and :class:`ConfigError` when the existing layout cannot
    work.
    """
    from confluent_kafka import KafkaException  # noqa: PLC0415  # imported when used: the CLI stays light
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415  # same
    from confluent_kafka.cimpl import NewTopic  # noqa: PLC0415  # same; typed there

    admin = AdminClient(client_config(settings))
    existing = _partition_counts(admin, settings, timeout)
    specs = topic_specs(settings, existing.get(settings.topic_raw))
    raw_spec, changelog_spec = specs[0], specs[-1]
    have = existing.get(changelog_spec.name)
    if have is not None and have != raw_spec.partitions:
        raise ConfigError(
            f"changelog topic {changelog_spec.name!r} has {have} partitions but "
            f"{raw_spec.name!r} has {raw_spec.partitions}: they must match. Delete the changelog "
            "topic (its state is rebuilt from esa.raw only if esa.raw is replayed) or choose "
            "another ESATRACK_WORKER_GROUP"
        )
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication,
                config=dict(spec.config),
            )
            for spec in missing
        ],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    created: list[str] = []
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if error.name() == "TOPIC_ALREADY_EXISTS":  # another worker won the race
                continue
            raise ServiceUnavailable(
                f"could not create topic {name!r}: {error.str()}; check the broker's "
                "permissions and ESATRACK_TOPIC_REPLICATION (at most the number of brokers)"
            ) from None
        created.append(name)
    return sorted(created)


def raw_partition_count(settings: Settings, *, timeout: float = 30.0) -> int:
    """The partition count of the existing ``esa.raw`` (the workers' table follows it)."""
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415  # imported when used

    counts = _partition_counts(AdminClient(client_config(settings)), settings, timeout)
    count = counts.get(settings.topic_raw)
    if count is None:
        raise ConfigError(
            f"topic {settings.topic_raw!r} does not exist; run the worker without "
            "--no-create-topics once, or create it with the partitions you want"
        )
    return count


def _partition_counts(admin: Any, settings: Settings, timeout: float) -> dict[str, int]:
    from confluent_kafka import KafkaException  # noqa: PLC0415  # imported when used

    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"Kafka at {settings.kafka_bootstrap} did not answer ({exc}); start it "
            "(`esatrack stack up` for the local one) or fix ESATRACK_KAFKA_BOOTSTRAP"
        ) from None
    return {name: len(meta.partitions) for name, meta in metadata.topics.items()}
