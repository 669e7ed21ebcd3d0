"""The correlator's state objects: one per open message, connection and delivery connection.

Kept deliberately small (an open message must cost at most a few hundred bytes): ``__slots__``
classes whose facts live in one string (see :mod:`streams.correlate.facts`), plain ints and
floats, and two optional snapshot strings for what a record joins from other states
(the client of its connection, the envelope of its parent, the addresses of its delivery
connections) once those states may be gone.
"""

from __future__ import annotations

from typing import Final

from streams.correlate.facts import SEP

# Flag bits (``_State.flags``); every bit is a function of the facts (or of emission), so a
# state exported and restored means the same thing.
PENDING: Final = 1
"""Facts (or joined facts) changed since the last emission check."""
DONE: Final = 2
"""Message finished / connection closed: after ``retain`` the state can go."""
EXPIRED: Final = 4
"""Dropped at the horizon without being finished: the record says so."""
CHILD: Final = 8
"""The message has lineage children (rewritten, split or generated from it)."""
PARENT: Final = 16
"""The message has a lineage parent."""


class State:
    """What all states share."""

    __slots__ = ("base", "blob", "client", "emitted", "ext", "flags", "ident", "maxts", "n")

    def __init__(self, ident: int) -> None:
        self.ident = ident
        """The MID, ICID or DCID."""
        self.blob = SEP
        """``<header>`` + SEP + facts, each followed by SEP (header: the frozen id time)."""
        self.base: int | None = None
        """Milliseconds of the first timed fact: facts store their time relative to it."""
        self.maxts: float | None = None
        """Latest log time of any fact (seconds)."""
        self.n = 0
        """Number of facts."""
        self.emitted = 0
        """Revision last emitted (0: never)."""
        self.flags = 0
        self.client: str | None = None
        """Snapshot of the connection's client (JSON text), once the connection is gone."""
        self.ext: str | None = None
        """Snapshot of other joins (JSON text): parent envelope, delivery connection IPs."""

    def header(self) -> str:
        """The frozen header (the id's start time in ms), ``""`` before the first emission."""
        return self.blob[: self.blob.find(SEP)]

    def set_header(self, value: str) -> None:
        self.blob = value + self.blob[self.blob.find(SEP) :]


class MsgState(State):
    """An open message (appliance, MID)."""

    __slots__ = ()


class ConnState(State):
    """An open incoming connection (appliance, ICID)."""

    __slots__ = ()


class DlvState(State):
    """An open delivery connection (appliance, DCID): only its interface and address."""

    __slots__ = ()


class Host:
    """Everything the correlator knows about one appliance."""

    __slots__ = ("buckets", "conns", "dlvs", "heap", "msgs", "name", "wm")

    def __init__(self, name: str) -> None:
        self.name = name
        self.wm = float("-inf")
        """The watermark: the latest log time seen from this appliance."""
        self.msgs: dict[int, MsgState] = {}
        self.conns: dict[int, ConnState] = {}
        self.dlvs: dict[int, DlvState] = {}
        self.buckets: dict[int, list[State]] = {}
        """Second -> states to look at when the watermark reaches it."""
        self.heap: list[int] = []
        """The seconds of ``buckets``, as a heap."""
