"""The correlator's state objects: one per open message, connection and delivery connection.

Kept deliberately small (an open message must cost at most a few hundred bytes): ``__slots__``
classes whose facts live in one string (see :mod:`streams.correlate.facts`), plain ints and
floats, and two optional snapshot strings for what a record joins from other states
(the client of its connection, the envelope of its parent, the addresses of its delivery
connections) once those states may be gone.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

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
HELD: Final = 32
"""Finished, but still in a quarantine: kept (frozen) up to the horizon, not ``retain``."""


class State:
    """What all states share.

    A message that waits (emitted, not finished: soft-bounced, quarantined, queued for an
    unreachable destination, possibly for days) is kept *frozen*: its facts, base time and
    snapshots compressed into one ``bytes`` in ``blob`` (``zlib`` with a preset dictionary of
    the words mail logs repeat). Anything that reads or changes it calls :meth:`thaw` first;
    the engine freezes it again after its next emission.
    """

    __slots__ = ("base", "blob", "client", "emitted", "ext", "flags", "ident", "maxts", "n")

    def __init__(self, ident: int) -> None:
        self.ident = ident
        """The MID, ICID or DCID."""
        self.blob: str | bytes = SEP
        """``<header>`` + SEP + facts, each followed by SEP (header: the frozen id time); or,
        frozen, all of it compressed."""
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

    def text(self) -> str:
        """The facts (thawed first if frozen)."""
        blob = self.blob
        if type(blob) is bytes:
            self.thaw()
            blob = self.blob
        assert isinstance(blob, str)
        return blob

    def header(self) -> str:
        """The frozen header (the id's start time in ms), ``""`` before the first emission."""
        blob = self.text()
        return blob[: blob.find(SEP)]

    def set_header(self, value: str) -> None:
        blob = self.text()
        self.blob = value + blob[blob.find(SEP) :]

    def freeze(self) -> None:
        """Compress facts, base time and snapshots into ``blob`` (idempotent)."""
        blob = self.blob
        if isinstance(blob, bytes):
            return
        packed = _PACK_SEP.join((blob, "" if self.base is None else str(self.base),
                                 self.client or "", self.ext or "")).encode()
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY,
                                      _ZDICT)
        self.blob = compressor.compress(packed) + compressor.flush()
        self.base = None
        self.client = self.ext = None

    def unpacked(self) -> tuple[str, int | None, str | None, str | None]:
        """(facts, base, client snapshot, other snapshots), without thawing the state."""
        blob = self.blob
        if type(blob) is not bytes:
            assert isinstance(blob, str)
            return blob, self.base, self.client, self.ext
        packed = zlib.decompressobj(-15, _ZDICT).decompress(blob).decode()
        text, base, client, ext = packed.split(_PACK_SEP)
        return text, int(base) if base else None, client or None, ext or None

    def thaw(self) -> None:
        """Undo :meth:`freeze` (idempotent)."""
        blob = self.blob
        if type(blob) is not bytes:
            return
        packed = zlib.decompressobj(-15, _ZDICT).decompress(blob).decode()
        text, base, client, ext = packed.split(_PACK_SEP)
        self.blob = text
        self.base = int(base) if base else None
        self.client = client or None
        self.ext = ext or None


_PACK_SEP: Final = "\x1d"
_ZDICT: Final = (
    # Words and phrases ESA mail logs repeat, most frequent last (zlib prefers near matches).
    # Only ever used in memory: exported states are thawed text, so changing this is safe.
    b"\x1fno attachment in message\x1fUnknown address error\x1f('550', ['5.1.1 user unknown'])"
    b"\x1f('466', ['Mailbox full.'])\x1fhas reputation 0.0 matched Condition: URL Reputation "
    b"Rule\x1ehttps://\x1fMessage from domain example.com, DMARC pass (SPF aligned True, DKIM "
    b"aligned True)\x1fsignature verified (d=example.com s=s1 i=@example.com)\x1fmailfrom "
    b"\x1fhelo \x1f\x1eV0\x1fs\x1fP\x1e\x1fk\x1fP\x1f\x1fd\x1fP\x1f\x1fa\x1fn\x1fCASE\x1f"
    b"\x1fv\x1fc\x1fSophos\x1f\x1fv\x1fn\x1f\x1f\x1fm\x1fk\x1f\x1fg\x1fn\x1fGRAYMAIL\x1f"
    b"\x1fo\x1fn\x1f\x1f\x1eq0\x1f\x1eP0\x1fDEFAULT\x1finbound\x1f\x1fDEFAULT\x1foutbound"
    b"\x1f\x1d{\"ip\":\"\",\"rdns\":\"mx1.example.com\",\"rdns_verified\":true,\"sbrs\":"
    b"null,\"sender_group\":\"UNKNOWNLIST\",\"flow\":\"ACCEPT\",\"interface\":\"Data 1\","
    b"\"country\":\"Thailand\",\"tls\":\"TLSv1.2\"},null,3]\x1d{\"d\":{\"\":\"\"}}"
    b"\x1eS0\x1f\x1eF0\x1f@example.com\x1f\x1eR0\x1f0\x1f@example.org\x1f\x1f\x1f\x1eI0\x1f<"
    b"@example.com>\x1eJ0\x1fRe: \x1eZ0\x1f"
)


class MsgState(State):
    """An open message (appliance, MID)."""

    __slots__ = ()


class ConnState(State):
    """An open incoming connection (appliance, ICID)."""

    __slots__ = ("cache",)

    def __init__(self, ident: int) -> None:
        super().__init__(ident)
        self.cache: tuple[int, dict[str, Any], str | None, int] | None = None
        """(fact count, client, auth user, facts used): the client folded once per change."""


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
