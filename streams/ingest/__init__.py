"""Getting raw ESA lines into Kafka: the syslog receiver, file replay, and their pure parts.

Pure: :mod:`~streams.ingest.framing` (TCP framing), :mod:`~streams.ingest.header` (the appliance
in a syslog header), :mod:`~streams.ingest.pack` (lines of one appliance into LF-separated Kafka
values), :mod:`~streams.ingest.spool` (the on-disk FIFO). Edges:
:mod:`~streams.ingest.producer` (Kafka), :mod:`~streams.ingest.receiver` (sockets),
:mod:`~streams.ingest.replay` (files).
"""
