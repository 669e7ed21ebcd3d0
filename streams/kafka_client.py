"""librdkafka (confluent-kafka) connection settings, the one place they are derived."""

from __future__ import annotations

from typing import Any

from streams.settings import Settings


def client_config(settings: Settings) -> dict[str, Any]:
    """Brokers and security (TLS, SASL) for any confluent-kafka client, from the settings."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        config["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile is not None:
        config["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
    return config
