"""The stream workers: faust-streaming agents that turn raw lines on Kafka into records.

Layout (the pure core apart from the edges):

- :mod:`streams.worker.processor`: pure. One :class:`~streams.worker.processor.PartitionProcessor`
  per ``esa.raw`` partition drives the parser and the correlation engine and says what to
  produce (records, dead letters) and which state keys changed.
- :mod:`streams.worker.codec`: pure. Bytes on the wire: record values (orjson), dead letters.
- :mod:`streams.worker.topics`: the topic layout and its creation (confluent-kafka admin).
- :mod:`streams.worker.metrics`: Prometheus metrics, and the health/metrics HTTP endpoint.
- :mod:`streams.worker.app`: the only module that imports faust: the app factory, the agent,
  the expiry timer and the glue between the engine's per-key state and the RocksDB table.
- :mod:`streams.worker.cli`: ``esatrack worker``.
"""
