"""Bring the stack's services up and down, and report on them.

``up`` is idempotent: a running service is left alone (and still awaited, so a second ``up``
issued while the first is starting also returns only once all is ready). A lock file under
``stack_dir`` serialises concurrent ``up``/``down`` commands.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.errors import StackError
from streams.settings import Settings
from streams.stack import checks, kafka, opensearch, pipeline, process
from streams.stack.service import Progress, Service

SERVICE_NAMES = ("kafka", "opensearch")
"""The services ``esatrack stack up`` starts by default (what the tests need)."""
ALL_NAMES = (*SERVICE_NAMES, *pipeline.PIPELINE_NAMES)
"""Every service, in start order; ``down`` stops them in reverse."""


def services(settings: Settings, names: Sequence[str] = SERVICE_NAMES) -> list[Service]:
    """The named services (the infrastructure by default), in start order."""
    factories = {"kafka": kafka.service, "opensearch": opensearch.service,
                 "worker": pipeline.worker, "indexer": pipeline.indexer,
                 "receiver": pipeline.receiver}
    return [factories[name](settings) for name in ALL_NAMES if name in names]


@contextlib.contextmanager
def stack_lock(stack_dir: Path, progress: Progress) -> Iterator[None]:
    """Hold an exclusive lock on ``stack_dir/.lock`` (waiting, with a note, if it is taken)."""
    stack_dir.mkdir(parents=True, exist_ok=True)
    with (stack_dir / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("waiting for another `esatrack stack` command to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(settings: Settings, chosen: Sequence[Service], progress: Progress) -> None:
    """Start what is not running among ``chosen`` and wait until every one of them is ready."""
    stack_dir = settings.stack_dir.expanduser().resolve()
    with stack_lock(stack_dir, progress):
        to_start = []
        for svc in chosen:
            pid = process.running_pid(svc.files)
            if pid is None:
                to_start.append(svc)
            else:
                progress(f"{svc.name}: already running (pid {pid})")
        started: list[Service] = []
        if to_start:
            java = checks.require_java()
            checks.require_disk(stack_dir, settings.stack_min_free_gb)
            for svc in to_start:
                checks.require_free_ports(svc.name, svc.ports)
            # One after the other: Maven 3.8 does not lock its local repository, and two
            # resolutions share artifacts (the dependency plugin and its own dependencies).
            commands = [(svc, svc.prepare(java, _prefixed(progress, svc.name))) for svc in to_start]
            for svc, command in commands:
                pid = process.start(command, svc.files, svc.env)
                progress(f"{svc.name}: starting (pid {pid}, log {svc.files.log_file})")
                started.append(svc)
        try:
            wait_ready(chosen, settings.stack_start_timeout, progress)
        except StackError:
            for svc in started:  # leave no half-started JVM holding the ports
                pid = process.running_pid(svc.files)
                if pid is not None:
                    process.stop(pid)
            raise


def up_staged(settings: Settings, progress: Progress, *, pipeline: bool = False) -> None:
    """Kafka and OpenSearch; with ``pipeline``, then the worker (it creates the topics), then
    the indexer and the receiver: each stage ready before the next starts."""
    stages: list[Sequence[str]] = [SERVICE_NAMES]
    if pipeline:
        stages += [("worker",), ("indexer", "receiver")]
    for names in stages:
        up(settings, services(settings, names), progress)


def wait_ready(chosen: Sequence[Service], timeout: float, progress: Progress) -> None:
    """Poll each service's probe until all are ready; :class:`StackError` if one dies or hangs."""
    begin = time.monotonic()
    pending = list(chosen)
    if pending:
        progress("waiting for " + " and ".join(svc.name for svc in pending))
    while pending:
        for svc in list(pending):
            if process.running_pid(svc.files) is None:
                raise StackError(
                    f"{svc.name} exited during start-up; last lines of "
                    f"{svc.files.log_file}:\n{_log_tail(svc)}"
                )
            if svc.probe():
                progress(f"{svc.name}: ready after {time.monotonic() - begin:.1f}s")
                pending.remove(svc)
        if pending and time.monotonic() - begin > timeout:
            names = ", ".join(svc.name for svc in pending)
            raise StackError(
                f"{names} not ready within {timeout:g}s (ESATRACK_STACK_START_TIMEOUT); last lines "
                f"of {pending[0].files.log_file}:\n{_log_tail(pending[0])}"
            )
        if pending:
            time.sleep(0.5)


def down(settings: Settings, chosen: Sequence[Service], progress: Progress) -> None:
    """Stop the running services among ``chosen`` (SIGTERM, then SIGKILL after a grace period)."""
    with stack_lock(settings.stack_dir.expanduser().resolve(), progress):
        for svc in reversed(chosen):  # OpenSearch first, Kafka last
            pid = process.running_pid(svc.files)
            if pid is None:
                progress(f"{svc.name}: not running")
            else:
                progress(f"{svc.name}: stopping (pid {pid})")
                killed = process.stop(pid)
                progress(f"{svc.name}: {'killed after the grace period' if killed else 'stopped'}")
            svc.files.pid_file.unlink(missing_ok=True)


@dataclass(frozen=True)
class Status:
    """One service's state, as ``esatrack stack status`` prints it."""

    name: str
    pid: int | None
    ports: dict[str, int]
    rss: int | None

    def line(self) -> str:
        ports = ",".join(str(port) for port in self.ports.values())
        if self.pid is None:
            return f"{self.name:<11} stopped   ports {ports}"
        rss = "?" if self.rss is None else f"{self.rss / 2**20:.0f} MiB"
        return f"{self.name:<11} running   pid {self.pid}  ports {ports}  rss {rss}"


def status(chosen: Sequence[Service]) -> list[Status]:
    """The state of each service (pid and resident memory when running)."""
    result = []
    for svc in chosen:
        pid = process.running_pid(svc.files)
        rss = process.rss_bytes(pid) if pid is not None else None
        result.append(Status(svc.name, pid, svc.ports, rss))
    return result


def _prefixed(progress: Progress, name: str) -> Progress:
    return lambda message: progress(f"{name}: {message}")


def _log_tail(svc: Service, lines: int = 15) -> str:
    return "\n".join(process.tail(svc.files.log_file, lines)) or "(empty log)"
