"""Detached processes with pid files: start, recognise, stop, tail (no services involved)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from streams.stack import process

SLEEPER = "import time; time.sleep(60)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def _command(code: str, home: Path) -> list[str]:
    # The main class and home appear as arguments, as they do on a service's JVM command line.
    return [sys.executable, "-c", code, "FakeMain", str(home)]


def _wait_started(pid: int) -> None:
    for _ in range(50):  # until the interpreter has installed its signal handlers
        if process.rss_bytes(pid):
            time.sleep(0.3)
            return
        time.sleep(0.05)


@pytest.mark.parametrize("content", [None, "", "not-a-pid", "999999999"])
def test_no_live_process_means_not_running(tmp_path: Path, content: str | None) -> None:
    """A missing, empty, garbled or dead pid file means the service is not running."""
    files = process.ProcessFiles(home=tmp_path, main_class="FakeMain")
    if content is not None:
        files.pid_file.write_text(content)
    assert process.running_pid(files) is None


def test_reused_pid_is_not_ours(tmp_path: Path) -> None:
    """A pid file pointing at an unrelated live process (here: pytest) is not trusted."""
    files = process.ProcessFiles(home=tmp_path, main_class="FakeMain")
    files.pid_file.write_text(str(os.getpid()))
    assert process.running_pid(files) is None


def test_start_find_stop(tmp_path: Path) -> None:
    """A started process is found by its pid file, measured, and gone after a SIGTERM stop."""
    files = process.ProcessFiles(home=tmp_path, main_class="FakeMain")
    pid = process.start(_command(SLEEPER, tmp_path), files)
    _wait_started(pid)
    assert process.running_pid(files) == pid
    assert (process.rss_bytes(pid) or 0) > 1_000_000
    assert process.stop(pid, grace_seconds=10) is False
    assert not process.alive(pid)
    assert process.running_pid(files) is None


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    """A process that ignores SIGTERM is killed once the grace period is over."""
    files = process.ProcessFiles(home=tmp_path, main_class="FakeMain")
    pid = process.start(_command(STUBBORN, tmp_path), files)
    _wait_started(pid)
    assert process.stop(pid, grace_seconds=0.5) is True
    assert not process.alive(pid)


def test_start_keeps_the_previous_log(tmp_path: Path) -> None:
    """Starting again moves the previous console log aside instead of overwriting it."""
    files = process.ProcessFiles(home=tmp_path, main_class="FakeMain")
    files.log_file.parent.mkdir(parents=True)
    files.log_file.write_text("previous run\n")
    pid = process.start([sys.executable, "-c", "print('hello')", "FakeMain", str(tmp_path)], files)
    for _ in range(100):
        if not process.alive(pid):
            break
        time.sleep(0.05)
    assert process.tail(files.log_file.with_name("console.log.1"), 5) == ["previous run"]
    assert process.tail(files.log_file, 5) == ["hello"]


@pytest.mark.parametrize(("lines", "expected"), [(2, ["c", "d"]), (10, ["a", "b", "c", "d"])])
def test_tail(tmp_path: Path, lines: int, expected: list[str]) -> None:
    """tail returns the last lines of a file, or all of a shorter one."""
    path = tmp_path / "log"
    path.write_text("a\nb\nc\nd\n")
    assert process.tail(path, lines) == expected
    assert process.tail(tmp_path / "missing", lines) == []
