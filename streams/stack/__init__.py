"""The local stack: a single-node Kafka and OpenSearch run from Maven Central jars, no Docker.

``esatrack stack up`` resolves the jars with Maven into ``stack_dir`` (outside the repository),
starts each service as a detached JVM with a pid file, and waits until it really answers.
Modules: :mod:`checks` (Java, ports, disk), :mod:`maven` (artifact resolution),
:mod:`process` (detached start, pid files, stop), :mod:`kafka` and :mod:`opensearch` (each
service's files, command and readiness probe), :mod:`control` (up, down, status), :mod:`cli`.
"""
