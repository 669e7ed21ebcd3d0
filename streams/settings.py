"""One validated, frozen settings object, read from ``ESATRACK_*`` environment variables.

Everything configurable lives here so that local runs, docker-compose and the Helm chart are
driven by the same names. Secrets are :class:`pydantic.SecretStr`: they print as ``**********``
and :meth:`Settings.safe_dict` is what may be logged.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import ConfigError


def _default_stack_dir() -> Path:
    return Path.home() / ".cache" / "esatrack" / "stack"


class Settings(BaseSettings):
    """All of esatrack's settings. Environment variable: ``ESATRACK_`` + upper-case field name."""

    model_config = SettingsConfigDict(
        env_prefix="ESATRACK_", frozen=True, extra="ignore", case_sensitive=False
    )

    # --- Kafka --------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    topic_raw: str = "esa.raw"
    topic_messages: str = "esa.messages"
    topic_connections: str = "esa.connections"
    topic_unparsed: str = "esa.unparsed"
    topic_alerts: str = "esa.alerts"
    topic_dead_letters: str = "esa.dead-letters"
    """Records the indexer cannot index (undecodable, or refused by OpenSearch), with why."""
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication: int = Field(default=1, ge=1)

    # --- OpenSearch ---------------------------------------------------------------------
    opensearch_url: str = "http://127.0.0.1:9200"
    opensearch_username: str | None = None
    opensearch_password: SecretStr | None = None
    opensearch_verify_certs: bool = True
    opensearch_shards: int = Field(default=1, ge=1)
    opensearch_replicas: int = Field(default=0, ge=0)
    opensearch_refresh_interval: str = "1s"
    """How soon indexed records become searchable (index template setting; "5s" indexes faster)."""

    # --- Parsing and correlation --------------------------------------------------------
    default_host: str = "esa"
    """Appliance name for lines that carry none (file ingest, host-less syslog)."""
    timezone: str = "UTC"
    """IANA zone of appliances whose syslog times carry no zone."""
    host_timezones: dict[str, str] = Field(default_factory=dict)
    """Per-appliance IANA zones, as JSON: ``{"esa1": "Asia/Bangkok"}``."""
    max_line_bytes: int = Field(default=65536, ge=256)
    grace_seconds: float = Field(default=10.0, ge=0)
    """Log time a record waits after its latest line for lines that arrive out of order."""
    emit_at_finish: bool = True
    """Emit a message's record at its ``Message finished`` line without waiting for the grace
    (searchable within seconds); a line within the grace that changes it re-emits it with a
    higher revision, so the final revision is the same as with ``false``."""
    message_horizon_hours: float = Field(default=80.0, gt=0)
    connection_horizon_hours: float = Field(default=2.0, gt=0)
    retain_finished_seconds: float = Field(default=900.0, ge=0)
    """Log time a finished message / closed connection stays in the correlator for late lines
    and redeliveries (re-emitted on change), before its state is dropped."""

    # --- Local stack (embedded Kafka + OpenSearch started from Maven Central) -----------
    stack_dir: Path = Field(default_factory=_default_stack_dir)
    pipeline_dir: Path | None = None
    """Where ``stack up --pipeline`` keeps the worker/indexer/receiver (default: stack_dir)."""
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    kafka_heap: str = "512m"
    opensearch_http_port: int = Field(default=9200, ge=1, le=65535)
    opensearch_transport_port: int = Field(default=9300, ge=1, le=65535)
    opensearch_heap: str = "1g"
    maven_repo_local: Path | None = None
    """Maven local repository for the stack's artifacts (default: Maven's own, ~/.m2/repository)."""
    stack_min_free_gb: float = Field(default=2.0, ge=0)
    """Free disk space `esatrack stack up` requires under stack_dir."""
    stack_start_timeout: float = Field(default=180.0, gt=0)
    """Seconds `esatrack stack up` waits for each service to become ready."""

    # --- Receiver (`esatrack receive`) and replay ----------------------------------------
    receiver_bind: str = "0.0.0.0"
    """Address the syslog listeners bind to."""
    receiver_udp_port: int = Field(default=5514, ge=0, le=65535)
    """Syslog over UDP (0 = off)."""
    receiver_tcp_port: int = Field(default=5514, ge=0, le=65535)
    """Syslog over TCP, LF or octet-counted framing detected per connection (0 = off)."""
    receiver_tls_port: int = Field(default=6514, ge=0, le=65535)
    """Syslog over TLS (RFC 5425); on only when a certificate and key are set (0 = off)."""
    receiver_tls_cert: Path | None = None
    """PEM certificate (chain) the TLS listener presents."""
    receiver_tls_key: Path | None = None
    """PEM private key of that certificate."""
    receiver_tls_client_ca: Path | None = None
    """If set, TLS peers must present a certificate signed by this CA (mutual TLS)."""
    receiver_spool_dir: Path = Path("./state/spool")
    """Where lines wait on disk while Kafka is slow or down."""
    receiver_spool_max_bytes: int = Field(default=1024**3, ge=65536)
    """Spool cap; lines beyond it are dropped and counted (`esatrack_ingest_dropped_total`)."""
    receiver_max_queued: int = Field(default=200_000, ge=1000)
    """Lines held by the producer before TCP stops reading and UDP goes to the spool."""
    receiver_shutdown_timeout: float = Field(default=10.0, ge=0)
    """Seconds to wait for Kafka on SIGTERM before spooling what is left."""
    producer_linger_ms: float = Field(default=20.0, ge=0)
    """Producer batching delay (librdkafka ``linger.ms``)."""
    producer_compression: str = "lz4"
    """Producer compression (``none``, ``gzip``, ``snappy``, ``lz4``, ``zstd``)."""
    producer_delivery_timeout: float = Field(default=300.0, gt=0)
    """Seconds a line may wait for Kafka before its delivery counts as failed (then the receiver
    spools it and replay reports it; librdkafka ``message.timeout.ms``)."""
    producer_pack_bytes: int = Field(default=65536, ge=0, le=1_000_000)
    """Receiver and replay: lines of one appliance are packed, LF-separated, into Kafka values of
    at most this many bytes (a longer line goes alone; 0 = one line per value). The stream
    worker pays per Kafka record, so packed values are several times cheaper for it."""
    producer_pack_linger_ms: float = Field(default=10.0, ge=0, le=1000)
    """Receiver, with packing on: how long a line may wait in memory for more lines of the same
    appliance and connection before their value is produced (0 = pack only what one read
    delivered, produce at once). Bounds the records per appliance-connection to about
    1000 / this per second; adds at most this much latency."""

    # --- Processes ----------------------------------------------------------------------
    state_dir: Path = Path("./state")
    worker_group: str = "esatrack-worker"
    """Faust app id of the stream workers: their consumer group and the prefix of their
    changelog topics (``<group>-correlation-changelog``)."""
    worker_batch_size: int = Field(default=2000, ge=1)
    """Kafka records (one line each, or a shipper's LF-separated lines) taken per batch."""
    worker_batch_lines: int = Field(default=10000, ge=1)
    """Most lines processed before their records and state are produced and acknowledged:
    a batch of packed records holding more is done in parts of about this many lines, so
    records reach the indexer while a catching-up worker is still reading."""
    worker_batch_seconds: float = Field(default=0.05, gt=0)
    """Longest wait for a batch to fill before processing what has arrived."""
    worker_tick_seconds: float = Field(default=1.0, gt=0)
    """Interval of the timer that emits records whose grace or expiry has passed."""
    indexer_group: str = "esatrack-indexer"
    """Consumer group of `esatrack indexer`."""
    indexer_batch_docs: int = Field(default=5000, ge=1)
    """Records per bulk request at most."""
    indexer_batch_bytes: int = Field(default=8 * 1024**2, ge=1024)
    """Bytes of Kafka values per bulk request at most."""
    indexer_batch_seconds: float = Field(default=0.2, gt=0)
    """Longest wait for a batch to fill before indexing what has arrived."""
    indexer_bulk_concurrency: int = Field(default=2, ge=1, le=16)
    """Bulk requests in flight per batch (the batch is split by document id)."""
    indexer_backoff_max_seconds: float = Field(default=30.0, gt=0)
    """Cap of the retry delay while OpenSearch or Kafka is unavailable."""
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    log_level: str = "INFO"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _check_zone(value)
        return value

    @field_validator("host_timezones")
    @classmethod
    def _known_zones(cls, value: dict[str, str]) -> dict[str, str]:
        for zone in value.values():
            _check_zone(zone)
        return value

    def zone_for(self, host: str | None) -> str:
        """The IANA zone of an appliance (its own if configured, else the default)."""
        if host is not None and host in self.host_timezones:
            return self.host_timezones[host]
        return self.timezone

    def safe_dict(self) -> dict[str, Any]:
        """The settings as a dict fit for logs: secrets stay masked."""
        return {key: str(val) if isinstance(val, SecretStr) else val
                for key, val in self.model_dump().items()}


def _check_zone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r} (e.g. 'UTC', 'Asia/Bangkok')") from exc


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings once; raise :class:`ConfigError` naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"ESATRACK_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (never at import)."""
    return load_settings()
