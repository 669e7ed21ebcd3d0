"""The project's own exception tree.

Every error a user can meet says what went wrong and what to do next. Parsers never raise:
bad input becomes an ``unknown`` event. These exceptions are for the edges (configuration,
services, I/O) where stopping with a clear message is the right answer.
"""


class EsatrackError(Exception):
    """Base of every error esatrack raises on purpose; the CLI prints it without a traceback."""


class ConfigError(EsatrackError):
    """The settings are invalid; the message names the variable and the expected form."""


class StackError(EsatrackError):
    """The local Kafka/OpenSearch stack could not be started, stopped or reached."""


class ServiceUnavailable(EsatrackError):
    """A service (Kafka, OpenSearch) did not answer; the message says which and where."""
