"""The stack controller's waiting and reporting, driven with stand-in processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streams.errors import StackError
from streams.stack import control, process
from streams.stack.service import Service


def _service(home: Path, probe_result: bool) -> Service:
    return Service(
        name="fake", files=process.ProcessFiles(home=home, main_class="FakeMain"),
        ports={"fake_port": 1}, prepare=lambda _java, _progress: [],
        probe=lambda: probe_result,
    )


def _start(svc: Service, code: str) -> int:
    return process.start([sys.executable, "-c", code, "FakeMain", str(svc.home)], svc.files)


def test_wait_reports_a_crash_with_the_log(tmp_path: Path) -> None:
    """A service that exits during start-up is reported at once, with its log's last lines."""
    svc = _service(tmp_path, probe_result=False)
    _start(svc, "import sys; print('bind failed: port taken'); sys.exit(1)")
    with pytest.raises(StackError, match=r"(?s)exited during start-up.*bind failed"):
        control.wait_ready([svc], timeout=30, progress=lambda _m: None)


def test_wait_gives_up_after_the_timeout(tmp_path: Path) -> None:
    """A service that runs but never answers its probe fails after the timeout, naming it."""
    svc = _service(tmp_path, probe_result=False)
    pid = _start(svc, "import time; time.sleep(30)")
    try:
        with pytest.raises(StackError, match="fake not ready within 1s"):
            control.wait_ready([svc], timeout=1, progress=lambda _m: None)
    finally:
        process.stop(pid, grace_seconds=5)


def test_wait_returns_when_ready(tmp_path: Path) -> None:
    """A running service whose probe answers is reported ready."""
    svc = _service(tmp_path, probe_result=True)
    pid = _start(svc, "import time; time.sleep(30)")
    messages: list[str] = []
    try:
        control.wait_ready([svc], timeout=10, progress=messages.append)
    finally:
        process.stop(pid, grace_seconds=5)
    assert messages[-1].startswith("fake: ready after")


@pytest.mark.parametrize(("status", "expected"), [
    (control.Status("kafka", None, {"kafka_port": 9092, "c": 9093}, None),
     "kafka       stopped   ports 9092,9093"),
    (control.Status("opensearch", 42, {"http": 9200}, 300 * 2**20),
     "opensearch  running   pid 42  ports 9200  rss 300 MiB"),
])
def test_status_lines(status: control.Status, expected: str) -> None:
    """Status lines name the service, its state, pid, ports and resident memory."""
    assert status.line() == expected
