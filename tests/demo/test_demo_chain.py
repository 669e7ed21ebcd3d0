"""``esatrack demo``: the sample logs through receiver, Kafka, worker, indexer and OpenSearch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient
from opensearchpy import OpenSearch

from streams.demo import samples
from streams.settings import load_settings
from streams.stack import control, pipeline

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"


@pytest.fixture
def demo_env(
    kafka_bootstrap: str, opensearch: OpenSearch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """Environment for a demo run of its own: own topics, groups, ports and pipeline dir."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "ESATRACK_PIPELINE_DIR": str(tmp_path / "pipeline"),
        "ESATRACK_TOPIC_RAW": f"demo-{tag}.raw",
        "ESATRACK_TOPIC_MESSAGES": f"demo-{tag}.messages",
        "ESATRACK_TOPIC_CONNECTIONS": f"demo-{tag}.connections",
        "ESATRACK_TOPIC_UNPARSED": f"demo-{tag}.unparsed",
        "ESATRACK_TOPIC_DEAD_LETTERS": f"demo-{tag}.dead-letters",
        "ESATRACK_WORKER_GROUP": f"demo-{tag}-worker",
        "ESATRACK_INDEXER_GROUP": f"demo-{tag}-indexer",
        "ESATRACK_METRICS_PORT": "19464",
        "ESATRACK_RECEIVER_TCP_PORT": "15514",
        "ESATRACK_RECEIVER_UDP_PORT": "15514",
        "ESATRACK_RECEIVER_TLS_PORT": "0",
    }
    yield env
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        settings = load_settings()
        control.down(settings, control.services(settings, pipeline.PIPELINE_NAMES), print)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    doomed = [name for name in admin.list_topics(timeout=10).topics if tag in name]
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=30).values():
            future.result(timeout=30)


def _offline_records(lines: list[bytes]) -> list[dict[str, object]]:
    """What `esatrack correlate` makes of the same lines read as one appliance's stream."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "correlate", "--host", "127.0.0.1", "-"],
        input=b"\n".join(lines) + b"\n", capture_output=True, check=True, timeout=120,
    )
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def test_demo_indexes_what_the_offline_engine_finishes(
    demo_env: dict[str, str], opensearch: OpenSearch
) -> None:
    """Every finished message of the offline run is indexed by the demo, with the same status."""
    if not SAMPLES.is_dir():
        pytest.fail(f"the shared sample logs are missing at {SAMPLES}")
    lines = list(samples.read_lines(samples.sample_files(SAMPLES)))
    expected = [r for r in _offline_records(lines) if r["type"] == "message" and r["complete"]]
    assert expected, "the samples hold finished messages"

    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--samples", str(SAMPLES),
         "--timeout", "240"],
        env={**os.environ, **demo_env}, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = dict(re.findall(r"^  ([a-z][A-Za-z ()]+?)\s{2,}(\d+)", done.stdout, re.MULTILINE))
    assert summary["lines sent over syslog"] == str(len(lines))
    assert summary["lines published to Kafka"] == str(len(lines))
    assert summary["lines read by the worker"] == str(len(lines))
    assert summary["unknown lines (dead letters)"] == "0"
    assert int(summary["records emitted by the worker"]) >= len(expected)
    assert int(summary["message records in the index"]) >= len(expected)
    assert "esatrack show m-" in done.stdout

    opensearch.indices.refresh(index="esa-messages")
    found = opensearch.search(
        index="esa-messages",
        body={"size": len(expected), "query": {"ids": {"values": [r["id"] for r in expected]}}},
    )["hits"]["hits"]
    by_id = {hit["_id"]: hit["_source"] for hit in found}
    for record in expected:
        assert record["id"] in by_id, f"MID {record['mid']} not indexed"
        assert by_id[str(record["id"])]["status"] == record["status"]
        assert by_id[str(record["id"])]["complete"] is True
