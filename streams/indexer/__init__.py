"""The indexer: Kafka (esa.messages, esa.connections, esa.raw) to OpenSearch, in bulk, with
offsets committed only after OpenSearch acknowledged (or the dead-letter topic took) every
document of a batch. Pure batching and routing here; Kafka and OpenSearch in ``service``."""
