"""Pre-flight checks of the local stack: Java version, ports, disk."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streams.errors import StackError
from streams.stack import checks


@pytest.mark.parametrize(("output", "major"), [
    ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
    ('java version "1.8.0_292"\nJava(TM) SE Runtime Environment', 8),
    ('openjdk version "21" 2023-09-19', 21),
    ('openjdk version "11.0.2+9"', 11),
    ('openjdk version "22-ea" 2024-03-19', 22),
    ("bash: java: command not found", None),
    ('openjdk version "x.y"', None),
])
def test_parse_java_major(output: str, major: int | None) -> None:
    """`java -version` output yields its major version (old 1.x scheme included), else None."""
    assert checks.parse_java_major(output) == major


def test_port_in_use_sees_a_listener() -> None:
    """A port with a listener is in use; once the listener is closed it is free again."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = int(server.getsockname()[1])
    try:
        assert checks.port_in_use(port)
        assert checks.port_open(port)
    finally:
        server.close()
    assert not checks.port_in_use(port)
    assert not checks.port_open(port)


def test_require_free_ports_names_the_setting() -> None:
    """A taken port is refused with the variable that moves the service elsewhere."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        with pytest.raises(StackError, match=f"port {port}.*ESATRACK_KAFKA_PORT"):
            checks.require_free_ports("kafka", {"kafka_port": port})


def test_require_disk(tmp_path: Path) -> None:
    """Too little free space is refused with what to do; enough passes, even for a new dir."""
    not_yet = tmp_path / "a" / "b"
    checks.require_disk(not_yet, 0.001)
    with pytest.raises(StackError, match="ESATRACK_STACK_DIR"):
        checks.require_disk(not_yet, 10.0**9)


def test_require_java_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No java anywhere: the error says to install a JDK 17+ or set JAVA_HOME."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojdk"))
    with pytest.raises(StackError, match="JAVA_HOME"):
        checks.require_java()


def test_require_java_too_old(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Java 11 on PATH is refused, naming the version found and the one needed."""
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"Java 11.*17 or newer"):
        checks.require_java()
