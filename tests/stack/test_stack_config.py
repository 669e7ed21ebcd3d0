"""What the local stack writes and runs: properties, YAML, commands, Maven error reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from streams.settings import load_settings
from streams.stack import kafka, maven, opensearch


def _parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def test_kafka_properties_follow_the_port_settings(tmp_path: Path) -> None:
    """Listeners, advertised listener and quorum voters all use the configured ports."""
    settings = load_settings(kafka_port=19092, kafka_controller_port=19093)
    props = _parse_properties(
        kafka.render_properties(kafka.server_properties(settings, tmp_path / "data"))
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path / "data")
    for internal in ("offsets.topic.replication.factor", "transaction.state.log.min.isr",
                     "share.coordinator.state.topic.replication.factor"):
        assert props[internal] == "1"


@pytest.mark.parametrize(("value", "rendered"), [
    ("plain", "k=plain"),
    ("C:\\dir", "k=C:\\\\dir"),
    ("two\nlines", "k=two\\nlines"),
])
def test_render_properties_escapes(value: str, rendered: str) -> None:
    """Backslashes and newlines are escaped so each value stays on its one line."""
    assert kafka.render_properties({"k": value}).splitlines()[1] == rendered


def test_cluster_ids_are_kraft_shaped() -> None:
    """Cluster ids are 22 URL-safe base64 characters, never starting with '-', and random."""
    ids = {kafka.new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    for cluster_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cluster_id), cluster_id


def test_opensearch_yaml_round_trips(tmp_path: Path) -> None:
    """opensearch.yml reads back as the node settings, ports and single-node discovery included."""
    settings = load_settings(opensearch_http_port=19200, opensearch_transport_port=19300)
    values = opensearch.node_settings(settings, tmp_path)
    lines = [line for line in opensearch.render_yaml(values).splitlines() if line[:1] != "#"]
    parsed = {key: json.loads(value) for key, value in (line.split(": ", 1) for line in lines)}
    assert parsed == values
    assert values["http.port"] == "19200"
    assert values["transport.port"] == "19300"
    assert values["discovery.type"] == "single-node"
    assert values["cluster.routing.allocation.disk.threshold_enabled"] == "false"


def test_jvm_commands_carry_heap_and_classpath(tmp_path: Path) -> None:
    """Both JVMs get the configured heap and their own lib/ on the classpath."""
    java = Path("/usr/bin/java")
    kafka_cmd = kafka.jvm_command(java, tmp_path, "384m", [kafka.MAIN_CLASS, "x.properties"])
    assert {"-Xms384m", "-Xmx384m"} <= set(kafka_cmd)
    assert kafka_cmd[kafka_cmd.index("-cp") + 1] == f"{tmp_path}/lib/*"
    assert kafka_cmd[-2:] == [kafka.MAIN_CLASS, "x.properties"]
    os_cmd = opensearch.jvm_command(java, tmp_path, "768m")
    assert {"-Xms768m", "-Xmx768m"} <= set(os_cmd)
    assert os_cmd[-2:] == [opensearch.MAIN_CLASS, str(tmp_path)]


def test_mvn_command_uses_the_repo_override(tmp_path: Path) -> None:
    """A Maven local-repository override is passed through; none means Maven's default."""
    pom, lib = tmp_path / "pom.xml", tmp_path / "lib"
    assert not any("maven.repo.local" in arg for arg in maven.mvn_command(pom, lib, None))
    command = maven.mvn_command(pom, lib, tmp_path / "m2")
    assert f"-Dmaven.repo.local={tmp_path / 'm2'}" in command
    assert f"-DoutputDirectory={lib}" in command


def test_error_tail_keeps_the_error_lines() -> None:
    """A failed resolution reports Maven's own [ERROR] lines, not its advice; long lines cut."""
    output = "\n".join([
        "[INFO] Scanning", "[ERROR] Could not resolve " + "x" * 1000, "[ERROR] ",
        "[ERROR] Re-run Maven using the -X switch to enable full debug logging.",
        "[ERROR] Plugin not found", "[ERROR] [Help 1] http://cwiki.apache.org/", "[INFO] done",
    ])
    tail = maven.error_tail(output, width=50)
    assert tail.splitlines() == ["[ERROR] Could not resolve " + "x" * 24 + " ...",
                                 "[ERROR] Plugin not found"]


def test_packaged_files_ship() -> None:
    """The POMs and the launcher source are package data, found without the source tree."""
    assert b"kafka_2.13" in maven.packaged(kafka.POM)
    assert b"org.opensearch" in maven.packaged(opensearch.POM)
    assert b"extends Node" in maven.packaged(opensearch.SOURCE)
