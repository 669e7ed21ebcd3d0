"""The pipeline's own processes as stack services: worker, indexer and receiver.

They run beside the local Kafka and OpenSearch so that one command brings up the whole chain
(``esatrack stack up --pipeline``, and ``esatrack demo``) and ``esatrack stack down`` stops
everything it started. Each is ``python -X esatrack=<home> -m streams.cli <command>``: the
``-X`` option is inert for Python but puts the service's home in its command line, which is
how the pid file is checked against ``/proc`` (see :mod:`streams.stack.process`).

Ports: each process serves ``/metrics`` and a readiness endpoint on its own port, counted up
from ``ESATRACK_METRICS_PORT``: worker +0, indexer +1, receiver +2.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from streams.settings import Settings
from streams.stack.process import ProcessFiles
from streams.stack.service import Progress, Service

MAIN_MODULE = "streams.cli"
PIPELINE_NAMES = ("worker", "indexer", "receiver")
"""In start order: the worker creates the topics, the receiver publishes last."""
METRICS_OFFSETS = {"worker": 0, "indexer": 1, "receiver": 2}
COMMANDS = {"worker": "worker", "indexer": "indexer", "receiver": "receive"}
"""The ``esatrack`` subcommand each service runs."""


def metrics_port(settings: Settings, name: str) -> int:
    """The port of a pipeline process's ``/metrics`` endpoint."""
    return settings.metrics_port + METRICS_OFFSETS[name]


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True if ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return 200 <= status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _python_service(
    settings: Settings, name: str, args: Callable[[Path], list[str]], ready_path: str,
    extra_ports: dict[str, int] | None = None,
) -> Service:
    home = (settings.pipeline_dir or settings.stack_dir).expanduser().resolve() / name
    port = metrics_port(settings, name)

    def prepare(_java: Path, _progress: Progress) -> list[str]:
        home.mkdir(parents=True, exist_ok=True)
        command = COMMANDS[name]
        return [sys.executable, "-X", f"esatrack={home}", "-m", MAIN_MODULE, command, *args(home)]

    return Service(
        name=name,
        files=ProcessFiles(home=home, main_class=MAIN_MODULE),
        ports={"metrics_port": port, **(extra_ports or {})},
        prepare=prepare,
        probe=lambda: http_ok(f"http://127.0.0.1:{port}{ready_path}"),
        env={"ESATRACK_METRICS_PORT": str(port)},
    )


def worker(settings: Settings) -> Service:
    """One stream worker, its RocksDB state under ``<stack_dir>/worker/state``."""
    return _python_service(
        settings, "worker", lambda home: ["--state-dir", str(home / "state")], "/readyz"
    )


def indexer(settings: Settings) -> Service:
    """The indexer (templates installed on start, then Kafka -> OpenSearch)."""
    return _python_service(settings, "indexer", lambda _home: [], "/readyz")


def receiver(settings: Settings) -> Service:
    """The syslog receiver on the configured ports, spooling under ``<stack_dir>/receiver``."""
    return _python_service(
        settings, "receiver", lambda home: ["--spool-dir", str(home / "spool")], "/healthz",
        extra_ports={"receiver_tcp_port": settings.receiver_tcp_port},
    )
