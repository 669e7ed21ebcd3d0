"""Kafka 4.1 in KRaft mode: one JVM that is both broker and controller, on 127.0.0.1.

Files under ``<stack_dir>/kafka``: ``lib/`` (jars), ``server.properties`` and
``log4j2.properties`` (rewritten on every start from the settings), ``cluster.id``
(generated once), ``data/`` (the log dirs, formatted once by ``StorageTool``), ``logs/``.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from streams.errors import StackError
from streams.settings import Settings
from streams.stack import checks, maven
from streams.stack.process import ProcessFiles
from streams.stack.service import Progress, Service

MAIN_CLASS = "kafka.Kafka"
POM = "kafka-pom.xml"

LOG4J2 = """\
# Written by `esatrack stack up`: Kafka's log4j 2 configuration (console -> logs/console.log).
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes as 22 characters of unpadded URL-safe base64.

    Never starting with ``-``, which StorageTool's argument parser would take for an option
    (Kafka's own ``Uuid.randomUuid`` makes the same exclusion).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def server_properties(settings: Settings, data_dir: Path) -> dict[str, str]:
    """The single-node broker+controller configuration for the given ports and data dir."""
    port, controller = settings.kafka_port, settings.kafka_controller_port
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",  # instead of 50: quicker first group on a dev box
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "24",
    }


def render_properties(properties: dict[str, str]) -> str:
    """Java ``.properties`` text: one ``key=value`` a line, backslashes and newlines escaped."""
    lines = ["# Written by `esatrack stack up` from the ESATRACK_* settings; edits are lost."]
    for key, value in properties.items():
        escaped = value.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"{key}={escaped}")
    return "\n".join(lines) + "\n"


def jvm_command(java: Path, home: Path, heap: str, main: list[str]) -> list[str]:
    """``java`` with the heap, logging configuration and classpath set, running ``main``."""
    return [
        str(java), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Djava.io.tmpdir={home / 'tmp'}",
        f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={home / 'logs'}",
        "-cp", str(home / "lib" / "*"), *main,
    ]


def _format_storage(java: Path, home: Path, config: Path, progress: Progress) -> None:
    id_file = home / "cluster.id"
    if not id_file.exists():
        id_file.write_text(new_cluster_id() + "\n")
    if (home / "data" / "meta.properties").exists():
        return
    progress("formatting the KRaft storage (once)")
    command = jvm_command(java, home, "256m", [
        "kafka.tools.StorageTool", "format", "-t", id_file.read_text().strip(),
        "-c", str(config), "--ignore-formatted",
    ])
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=home)
    if result.returncode != 0:
        raise StackError(
            f"kafka: formatting the storage in {home / 'data'} failed (exit "
            f"{result.returncode}): {maven.error_tail(result.stdout + result.stderr, lines=8)}\n"
            f"If the data is expendable, delete {home / 'data'} and run `esatrack stack up` again."
        )


def service(settings: Settings) -> Service:
    """The Kafka service as the stack controller sees it."""
    home = settings.stack_dir.expanduser().resolve() / "kafka"

    def prepare(java: Path, progress: Progress) -> list[str]:
        maven.resolve(POM, home, settings.maven_repo_local, progress)
        for sub in ("data", "logs", "tmp"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        config = home / "server.properties"
        config.write_text(render_properties(server_properties(settings, home / "data")))
        (home / "log4j2.properties").write_text(LOG4J2)
        _format_storage(java, home, config, progress)
        return jvm_command(java, home, settings.kafka_heap, [MAIN_CLASS, str(config)])

    def probe() -> bool:
        return ready(f"127.0.0.1:{settings.kafka_port}")

    return Service(
        name="kafka",
        files=ProcessFiles(home=home, main_class=MAIN_CLASS),
        ports={"kafka_port": settings.kafka_port,
               "kafka_controller_port": settings.kafka_controller_port},
        prepare=prepare,
        probe=probe,
    )


def ready(bootstrap: str, timeout: float = 3.0) -> bool:
    """True if the broker serves metadata and its group coordinator answers.

    Live brokers in the metadata are not enough on a fresh broker: the first consumer-group
    request creates ``__consumer_offsets``, and until its partitions are loaded, group calls
    fail with NOT_COORDINATOR (confluent-kafka's ``committed()`` raises it instead of
    retrying). Fetching a probe group's committed offsets triggers that creation and succeeds
    only once the coordinator is ready.
    """
    host, _, port = bootstrap.rpartition(":")
    if not checks.port_open(int(port), host):  # spares librdkafka's connection-refused noise
        return False
    # Imported here: only the probe needs the client library.
    from confluent_kafka import Consumer, KafkaException, TopicPartition  # noqa: PLC0415
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        if not admin.list_topics(timeout=timeout).brokers:
            return False
    except KafkaException:
        return False
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "esatrack-stack-readiness",
        "enable.auto.commit": False, "log_level": 0,
    })
    try:
        consumer.committed([TopicPartition("__consumer_offsets", 0)], timeout=timeout)
    except KafkaException:
        return False
    finally:
        consumer.close()
    return True
