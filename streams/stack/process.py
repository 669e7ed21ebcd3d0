"""Detached JVMs with pid files: start, find, stop, measure.

A service's pid file is trusted only if ``/proc/<pid>/cmdline`` still names the service's
main class and home directory, so a stale file whose pid was reused never leads us to
signal an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessFiles:
    """Where a service keeps its pid file and console log, and how to recognise its JVM."""

    home: Path
    main_class: str

    @property
    def pid_file(self) -> Path:
        return self.home / "pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "console.log"


def _cmdline(pid: int) -> list[str] | None:
    # Right after exec (when Popen returns) the new arguments may not be visible yet: an
    # empty cmdline is read again a few times before it is believed.
    for _ in range(25):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if raw:
            break
        time.sleep(0.02)
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # the field after "(comm)"


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reaping it if it is our own child)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    state = _state(pid)
    return state is not None and state not in {"Z", "X"}


def is_service(cmdline: list[str], files: ProcessFiles) -> bool:
    """True if a command line is this service's JVM (main class and home directory in it)."""
    return files.main_class in cmdline and any(str(files.home) in arg for arg in cmdline)


def running_pid(files: ProcessFiles) -> int | None:
    """The pid of the service's live JVM according to its pid file, else None."""
    try:
        pid = int(files.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    cmdline = _cmdline(pid)
    if cmdline is None or not alive(pid) or not is_service(cmdline, files):
        return None
    return pid


def start(command: list[str], files: ProcessFiles, env: dict[str, str] | None = None) -> int:
    """Start ``command`` detached (own session, output to the console log); return its pid."""
    log = files.log_file
    log.parent.mkdir(parents=True, exist_ok=True)
    if log.exists():  # keep the previous run's log for post-mortems
        log.replace(log.with_name(log.name + ".1"))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, cwd=files.home, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            env={**os.environ, **(env or {})},
        )
    files.pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(pid: int, grace_seconds: float = 30.0) -> bool:
    """SIGTERM ``pid``, wait up to ``grace_seconds``, then SIGKILL; True if it had to be killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return False
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.1)
    return True


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` in bytes (``VmRSS``), None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (empty if it does not exist)."""
    if not path.exists():
        return []
    with path.open(errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
