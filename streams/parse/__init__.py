"""Parsing ESA log lines into :class:`~streams.events.Event` objects (pure code, no I/O).

``Parser(...).parse_line(raw)`` turns one line into one event and never raises;
``parse_lines(lines)`` does the same for a file's lines, keeping the file's header context.
"""

from streams.parse.parser import Parser

__all__ = ["Parser"]
