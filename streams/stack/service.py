"""What the stack controller needs to know about one service (Kafka, OpenSearch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streams.stack.process import ProcessFiles

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Service:
    """One service of the local stack.

    ``prepare(java, progress)`` makes its files ready (jars, config, one-time formatting) and
    returns the command that runs it; ``probe()`` answers once, quickly, whether it is ready.
    """

    name: str
    files: ProcessFiles
    ports: dict[str, int]
    """Setting name (e.g. ``kafka_port``) -> port, for checks and error messages."""
    prepare: Callable[[Path, Progress], list[str]]
    probe: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables for the process."""

    @property
    def home(self) -> Path:
        return self.files.home
