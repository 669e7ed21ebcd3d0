"""Correlation: parsed events in, one record per message and per connection out (pure code).

``Correlator`` is the engine (driven the same way by the stream workers, the offline
``esatrack correlate`` command and the tests); records are plain dicts, valid against
``schemas/message.schema.json`` and ``schemas/connection.schema.json``.
"""

from streams.correlate.engine import Correlator
from streams.correlate.records import Record

__all__ = ["Correlator", "Record"]
