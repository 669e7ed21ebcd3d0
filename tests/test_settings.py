"""The settings object: validated once, frozen, secrets masked."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.settings import load_settings


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """ESATRACK_* variables set the matching fields."""
    monkeypatch.setenv("ESATRACK_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("ESATRACK_HOST_TIMEZONES", '{"esa1": "Asia/Bangkok"}')
    settings = load_settings()
    assert settings.kafka_bootstrap == "k1:9092,k2:9092"
    assert settings.zone_for("esa1") == "Asia/Bangkok"
    assert settings.zone_for("esa2") == "UTC"


def test_bad_zone_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown time zone is refused with the variable's name in the message."""
    monkeypatch.setenv("ESATRACK_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="ESATRACK_TIMEZONE"):
        load_settings()


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords never appear in what may be logged."""
    monkeypatch.setenv("ESATRACK_OPENSEARCH_PASSWORD", "hunter2")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.safe_dict())
    assert settings.opensearch_password is not None
    assert settings.opensearch_password.get_secret_value() == "hunter2"


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after validation."""
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.kafka_bootstrap = "elsewhere:9092"  # type: ignore[misc]  # the point of the test


def test_pack_bytes_default_environment_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """ESATRACK_PRODUCER_PACK_BYTES: 64 KiB by default, 0 turns packing off, and values outside
    0..1,000,000 (Kafka's default message size limit is about 1 MiB) are refused by name."""
    monkeypatch.delenv("ESATRACK_PRODUCER_PACK_BYTES", raising=False)
    assert load_settings().producer_pack_bytes == 65536
    monkeypatch.setenv("ESATRACK_PRODUCER_PACK_BYTES", "0")
    assert load_settings().producer_pack_bytes == 0
    monkeypatch.setenv("ESATRACK_PRODUCER_PACK_BYTES", "262144")
    assert load_settings().producer_pack_bytes == 262144
    for bad in ("-1", "1000001", "64k"):
        monkeypatch.setenv("ESATRACK_PRODUCER_PACK_BYTES", bad)
        with pytest.raises(ConfigError, match="ESATRACK_PRODUCER_PACK_BYTES"):
            load_settings()


def test_pack_linger_default_environment_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """ESATRACK_PRODUCER_PACK_LINGER_MS: 10 ms by default, 0 turns the linger off, fractions of a
    millisecond are allowed, and negative values, more than a second, or non-numbers are
    refused by name."""
    monkeypatch.delenv("ESATRACK_PRODUCER_PACK_LINGER_MS", raising=False)
    assert load_settings().producer_pack_linger_ms == 10
    for text, value in (("0", 0.0), ("2.5", 2.5), ("1000", 1000.0)):
        monkeypatch.setenv("ESATRACK_PRODUCER_PACK_LINGER_MS", text)
        assert load_settings().producer_pack_linger_ms == value
    for bad in ("-1", "1000.5", "10ms"):
        monkeypatch.setenv("ESATRACK_PRODUCER_PACK_LINGER_MS", bad)
        with pytest.raises(ConfigError, match="ESATRACK_PRODUCER_PACK_LINGER_MS"):
            load_settings()
