"""Pre-flight checks for the local stack: Java version, free ports, free disk.

The parsing is pure (tested without services); the probes are thin wrappers around the OS.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

from streams.errors import StackError

MIN_JAVA = 17

_JAVA_VERSION = re.compile(r'version "(?P<v>[^"]+)"')


def parse_java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output (``"1.8.0_292"`` -> 8, ``"17.0.2"`` -> 17)."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    parts = re.split(r"[.+_-]", match.group("v"))
    try:
        first = int(parts[0])
        return int(parts[1]) if first == 1 and len(parts) > 1 else first
    except ValueError:
        return None


def find_java_tool(name: str) -> Path | None:
    """``$JAVA_HOME/bin/<name>`` if JAVA_HOME is set, else ``<name>`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def require_java() -> Path:
    """The ``java`` executable, checked to be version 17 or newer; :class:`StackError` if not."""
    java = find_java_tool("java")
    if java is None:
        raise StackError(
            f"Java not found (neither $JAVA_HOME/bin/java nor java on PATH); install a JDK "
            f"{MIN_JAVA} or newer (e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
        )
    result = subprocess.run(
        [str(java), "-version"], capture_output=True, text=True, check=False, timeout=30
    )
    major = parse_java_major(result.stderr + result.stdout)
    if major is None:
        raise StackError(f"cannot read the version of {java}: {result.stderr.strip()[:200]!r}")
    if major < MIN_JAVA:
        raise StackError(
            f"{java} is Java {major}; Kafka 4 and OpenSearch 2.19 need Java {MIN_JAVA} or newer: "
            f"install a newer JDK and set JAVA_HOME to it"
        )
    return java


def require_javac() -> Path:
    """The ``javac`` compiler (a JDK, not only a JRE); :class:`StackError` if missing."""
    javac = find_java_tool("javac")
    if javac is None:
        raise StackError(
            "javac not found: the embedded OpenSearch launcher is compiled at set-up; install a "
            "JDK (not only a JRE), e.g. apt-get install openjdk-17-jdk-headless, or set JAVA_HOME"
        )
    return javac


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something listens on (or otherwise holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a socket in TIME_WAIT after a clean stop must not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_free_ports(service: str, ports: dict[str, int]) -> None:
    """:class:`StackError` naming the first port (and its setting) that is already taken."""
    for setting, port in ports.items():
        if port_in_use(port):
            raise StackError(
                f"{service}: port {port} on 127.0.0.1 is in use by another program; stop it "
                f"(see `ss -ltnp 'sport = :{port}'`) or choose another port with "
                f"ESATRACK_{setting.upper()}"
            )


def free_gb(path: Path) -> float:
    """Free space in GiB on the file system that holds ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free / 2**30


def require_disk(path: Path, minimum_gb: float) -> None:
    """:class:`StackError` if less than ``minimum_gb`` GiB are free where ``path`` lives."""
    free = free_gb(path)
    if free < minimum_gb:
        raise StackError(
            f"only {free:.1f} GiB free under {path}; the local stack needs at least "
            f"{minimum_gb:g} GiB (jars, Kafka logs, OpenSearch data): free some space or point "
            f"ESATRACK_STACK_DIR at a larger disk (ESATRACK_STACK_MIN_FREE_GB sets the threshold)"
        )
