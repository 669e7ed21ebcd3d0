"""Index and alias names. Daily indices by the record's *start* time, so every revision of a
record lands in the same index and overwrites its previous version by ``_id``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

KINDS: Final = ("messages", "connections", "raw")
PREFIX: Final = "esa-"


def alias(kind: str) -> str:
    """The read alias of a kind: ``esa-messages``, ``esa-connections``, ``esa-raw``."""
    return f"{PREFIX}{kind}"


def daily_index(kind: str, when: datetime | float) -> str:
    """The daily index of a kind for a UTC time: ``esa-messages-2024.03.17``."""
    moment = when if isinstance(when, datetime) else datetime.fromtimestamp(when, UTC)
    return f"{PREFIX}{kind}-{moment.astimezone(UTC):%Y.%m.%d}"


def index_pattern(kind: str) -> str:
    """The pattern the kind's template matches: ``esa-messages-*``."""
    return f"{PREFIX}{kind}-*"
