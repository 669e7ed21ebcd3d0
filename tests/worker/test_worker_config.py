"""Settings turned into the worker's topic layout, client settings and faust options."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import orjson
import pytest

from streams.errors import ConfigError
from streams.kafka_client import client_config
from streams.settings import load_settings
from streams.worker.app import broker_credentials, broker_urls, faust_options
from streams.worker.codec import (
    dead_letter_line,
    decode_record,
    encode_dead_letter,
    encode_record,
)
from streams.worker.topics import changelog_topic, topic_specs


def test_topic_layout_follows_the_settings() -> None:
    """Explicit partitions and replication; only the changelog is compacted."""
    settings = load_settings(topic_partitions=4, topic_replication=3, worker_group="wg")
    specs = {spec.name: spec for spec in topic_specs(settings)}
    assert set(specs) == {"esa.raw", "esa.messages", "esa.connections", "esa.unparsed",
                          "wg-correlation-changelog"}
    assert {(s.partitions, s.replication) for s in specs.values()} == {(4, 3)}
    assert specs["wg-correlation-changelog"].config == {"cleanup.policy": "compact"}
    assert all(not s.config for name, s in specs.items() if "changelog" not in name)


def test_changelog_follows_an_existing_raw_topic() -> None:
    """An esa.raw created elsewhere with other partitions sets the changelog's count."""
    settings = load_settings(topic_partitions=6)
    specs = {spec.name: spec for spec in topic_specs(settings, raw_partitions=12)}
    assert specs["esa.raw"].partitions == 12
    assert specs[changelog_topic(settings)].partitions == 12
    assert specs["esa.messages"].partitions == 6


@pytest.mark.parametrize(
    ("bootstrap", "urls"),
    [
        ("127.0.0.1:9092", ["kafka://127.0.0.1:9092"]),
        ("k1:9092, k2:9093", ["kafka://k1:9092", "kafka://k2:9093"]),
        ("kafka://k1:9092", ["kafka://k1:9092"]),
    ],
)
def test_broker_urls(bootstrap: str, urls: list[str]) -> None:
    """Bootstrap servers become faust broker URLs."""
    assert broker_urls(load_settings(kafka_bootstrap=bootstrap)) == urls


def test_empty_bootstrap_is_refused() -> None:
    """No broker at all is a configuration error naming the variable."""
    with pytest.raises(ConfigError, match="ESATRACK_KAFKA_BOOTSTRAP"):
        broker_urls(load_settings(kafka_bootstrap=" , "))


def test_sasl_ssl_credentials_are_passed_through(tmp_path: Path) -> None:
    """SASL over TLS: user, secret and mechanism reach faust; TLS gets a context."""
    settings = load_settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="worker", kafka_sasl_password="s3cret",
    )
    creds = broker_credentials(settings)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password) == ("worker", "s3cret")
    assert creds.mechanism.value == "SCRAM-SHA-512"
    assert isinstance(creds.ssl_context, ssl.SSLContext)
    assert "s3cret" not in repr(creds)
    client = client_config(settings)
    assert client["sasl.password"] == "s3cret"
    assert client["security.protocol"] == "SASL_SSL"


@pytest.mark.parametrize(
    ("protocol", "kind"),
    [("PLAINTEXT", type(None)), ("SSL", faust.SSLCredentials),
     ("SASL_PLAINTEXT", faust.SASLCredentials)],
)
def test_credentials_by_protocol(protocol: str, kind: type) -> None:
    """Each security protocol maps to its faust credentials."""
    settings = load_settings(kafka_security_protocol=protocol, kafka_sasl_username="u",
                             kafka_sasl_password="p")
    assert isinstance(broker_credentials(settings), kind)


def test_unknown_protocol_is_refused() -> None:
    """A protocol faust cannot speak stops start-up with the variable's name."""
    with pytest.raises(ConfigError, match="ESATRACK_KAFKA_SECURITY_PROTOCOL"):
        broker_credentials(load_settings(kafka_security_protocol="GSSAPI"))


def test_faust_options_are_at_least_once_from_the_start() -> None:
    """A new group reads esa.raw from the start; acks from all replicas; no faust web."""
    options = faust_options(load_settings(state_dir=Path("/var/lib/esatrack")))
    assert options["processing_guarantee"] == "at_least_once"
    assert options["consumer_auto_offset_reset"] == "earliest"
    assert options["producer_acks"] == -1
    assert options["datadir"] == "/var/lib/esatrack"
    assert options["web_enabled"] is False


RECORDS = [
    {"type": "message", "id": "m-1", "subject": "héllo", "rcpts": [1, 2]},
    {"type": "connection", "id": "c-2", "client": {"ip": "192.0.2.1"}, "mids": []},
]


@pytest.mark.parametrize("record", RECORDS)
def test_records_round_trip(record: dict[str, object]) -> None:
    """A record encodes to JSON and decodes back equal."""
    assert decode_record(encode_record(record)) == record


def test_a_record_must_be_an_object() -> None:
    """Anything but a JSON object is refused when read back."""
    with pytest.raises(ValueError, match="JSON object"):
        decode_record(b"[1, 2]")


@pytest.mark.parametrize("raw", [b"plain text line", b"bad \xff\xfe bytes", b""])
def test_dead_letters_keep_the_raw_line_byte_for_byte(raw: bytes) -> None:
    """Text stays text, other bytes go base64; either way the line comes back exactly."""
    value = encode_dead_letter(reason="why", raw=raw, appliance="esa1", topic="esa.raw",
                               partition=2, offset=7, received_at=1.5)
    letter = orjson.loads(value)
    assert dead_letter_line(letter) == raw
    assert (letter["reason"], letter["partition"], letter["offset"]) == ("why", 2, 7)
