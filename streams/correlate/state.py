"""The correlator's state objects: one per open message, connection and delivery connection.

Kept deliberately small (an open message must cost at most a few hundred bytes): ``__slots__``
classes whose facts live in one string (see :mod:`streams.correlate.facts`), plain ints and
floats; a message also has two optional snapshot strings for what its record joins from other
states (the client of its connection, the envelope of its parent, the addresses of its
delivery connections) once those states may be gone, and a connection the client its messages
join, folded once per change.

A message that waits (emitted, not finished) is not even an object: :class:`Host` keeps it
*packed*, as one ``bytes`` (:func:`pack`: its numbers, then its frozen blob) in place of the
:class:`MsgState`, and :meth:`Host.msg` unpacks it into one again when it is needed.
"""

from __future__ import annotations

import math
import struct
import zlib
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
HELD: Final = 32
"""Finished, but still in a quarantine: kept (frozen) up to the horizon, not ``retain``."""


class State:
    """What all states share."""

    __slots__ = ("base", "blob", "emitted", "flags", "ident", "maxts", "n")

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

    def unpacked(self) -> tuple[str, int | None, str | None, str | None]:
        """(facts, base, client snapshot, other snapshots): only messages have snapshots."""
        return self.text(), self.base, None, None

    def thaw(self) -> None:
        """Undo :meth:`MsgState.freeze`: only messages are ever frozen."""


class MsgState(State):
    """An open message (appliance, MID).

    A message that waits (emitted, not finished: soft-bounced, quarantined, queued for an
    unreachable destination, possibly for days) is kept *frozen*: its facts, base time and
    snapshots compressed into one ``bytes`` in ``blob`` (``zlib`` with a preset dictionary of
    the words mail logs repeat), and that blob *packed* with its numbers in the table in place
    of the object (:func:`pack`). Anything that reads or changes it unpacks it
    (:meth:`Host.msg`) and calls :meth:`thaw` first (:meth:`State.text` does); the engine packs
    it again after its next emission.
    """

    __slots__ = ("client", "ext", "sched")

    def __init__(self, ident: int) -> None:
        super().__init__(ident)
        self.client: str | None = None
        """Snapshot of the connection's client (JSON text), once the connection is gone."""
        self.ext: str | None = None
        """Snapshot of other joins (JSON text): parent envelope, delivery connection IPs."""
        self.sched: int | None = None
        """The watermark second of its entry by MID in ``Host.buckets``: what wakes it while
        it is packed. One at most: moved when it is packed again with another due second,
        taken out when it goes, used up when its second comes (None: none)."""

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
    # What a waiting message's packed state typically looks like (facts, base time, client
    # snapshot), as a preset dictionary: zlib then stores a message as the differences from it
    # (about 190 bytes instead of 800). Only ever used in memory: exported states are thawed
    # text, so changing this is safe. Most frequent shapes last (zlib prefers near matches).
    b"\x1fno attachment in message\x1fUnknown address error\x1f('550', ['5.1.1 user unknown'])"
    b"\x1f('466', ['Mailbox full.'])\x1fhas reputation 0.0 matched Condition: URL Reputation "
    b"Rule\x1fhelo \x1eU0\x1fhttps://www.example.com/\x1eA0\x1finvoice.pdf\x1eA0\x1freport.xlsx"
    b"\x1d{\"d\":{\"\":\"\"}}\x1d[{\"ip\":\"192.0.2.1\",\"rdns\":\"mail.example.net\","
    b"\"rdns_verified\":true,\"sbrs\":3.5,\"sender_group\":\"ACCEPTLIST\",\"flow\":\"RELAY\","
    b"\"interface\":\"Data 2\",\"country\":\"Japan\",\"tls\":\"TLSv1.3\"},\"user\",4]"
    b"1700000000000\x1eS0\x1f123456\x1eF0\x1falice@example.com\x1f123456\x1eR0\x1f0\x1fbob@"
    b"example.org\x1f\x1f\x1f123456\x1eR0\x1f1\x1fcarol@example.net\x1f\x1f\x1f123456\x1eI0"
    b"\x1f<5f3a9c2e1b7d.1234567@example.com>\x1eJ0\x1fYour order #12345 has shipped\x1eZ0\x1f"
    b"123456\x1falice@example.com\x1eP0\x1fDEFAULT\x1foutbound\x1f\x1eV0\x1fs\x1fF\x1fmailfrom"
    b" alice@example.com\x1f\x1eV0\x1fk\x1fP\x1fsignature verified (d=example.com s=s1 i=@"
    b"example.com)\x1f\x1eV0\x1fd\x1fP\x1fMessage from domain example.com, DMARC pass (SPF "
    b"aligned True, DKIM aligned True)\x1f\x1ev0\x1fa\x1fs\x1fCASE\x1f\x1eV0\x1fa\x1fs\x1fCASE"
    b"\x1f\x1ev0\x1fv\x1fc\x1fSophos\x1f\x1eV0\x1fv\x1fn\x1f\x1f\x1eV0\x1fm\x1fc\x1f\x1f"
    b"\x1eV0\x1fg\x1fn\x1fGRAYMAIL\x1f\x1eV0\x1fo\x1fn\x1f\x1f\x1eq0\x1f\x1e\x1d1700000000000"
    b"\x1d[{\"ip\":\"198.51.100.7\",\"rdns\":\"mx2.example.org\",\"rdns_verified\":false,"
    b"\"sbrs\":null,\"sender_group\":\"SUSPECTLIST\",\"flow\":\"ACCEPT\",\"interface\":"
    b"\"Data 1\",\"country\":\"Thailand\",\"tls\":\"TLSv1.2\"},null,3]\x1d"
    b"1710000000000\x1eS0\x1f654321\x1eF0\x1fdave@example.org\x1f654321\x1eR0\x1f0\x1ferin@"
    b"example.com\x1f\x1f\x1f654321\x1eI0\x1f<9c1d2e3f4a5b.7654321@example.org>\x1eJ0\x1fRe: "
    b"meeting on 12345\x1eZ0\x1f654321\x1fdave@example.org\x1eP0\x1fDEFAULT\x1finbound\x1f"
    b"\x1eV0\x1fs\x1fP\x1fmailfrom dave@example.org\x1f\x1eV0\x1fk\x1fP\x1fsignature verified "
    b"(d=example.org s=s1 i=@example.org)\x1f\x1eV0\x1fd\x1fP\x1fMessage from domain "
    b"example.org, DMARC pass (SPF aligned True, DKIM aligned True)\x1f\x1ev0\x1fa\x1fn\x1fCASE"
    b"\x1f\x1eV0\x1fa\x1fn\x1fCASE\x1f\x1ev0\x1fv\x1fc\x1fSophos\x1f\x1eV0\x1fv\x1fn\x1f\x1f"
    b"\x1eV0\x1fm\x1fk\x1fno attachment in message\x1f\x1eV0\x1fg\x1fn\x1fGRAYMAIL\x1f\x1eV0"
    b"\x1fo\x1fn\x1f\x1f\x1eq0\x1f\x1e\x1d1710000000000\x1d[{\"ip\":\"203.0.113.5\",\"rdns\":"
    b"\"mx1.example.com\",\"rdns_verified\":true,\"sbrs\":null,\"sender_group\":\"UNKNOWNLIST\""
    b",\"flow\":\"ACCEPT\",\"interface\":\"Data 1\",\"country\":\"United States\",\"tls\":"
    b"\"TLSv1.2\"},null,3]\x1d"
)


_HEAD: Final = struct.Struct("<dqIIB")
"""The numbers of a packed message, before its frozen blob: maxts (NaN: none), sched (-1:
none), n, emitted, flags."""
_HEAD_SIZE: Final = _HEAD.size


def pack(s: MsgState) -> bytes:
    """A waiting message as one ``bytes``: what :class:`Host` keeps in place of the object
    (freezes ``s``; the object itself is then not used any more)."""
    s.freeze()
    blob = s.blob
    assert isinstance(blob, bytes)
    maxts = s.maxts
    sched = s.sched
    return _HEAD.pack(float("nan") if maxts is None else maxts, -1 if sched is None else sched,
                      s.n, s.emitted, s.flags) + blob


def unpack(ident: int, data: bytes) -> MsgState:
    """The inverse of :func:`pack`: the message as an object again (still frozen)."""
    s = MsgState(ident)
    maxts, sched, s.n, s.emitted, s.flags = _HEAD.unpack_from(data)
    s.maxts = None if math.isnan(maxts) else maxts  # NaN: no timed fact
    s.sched = None if sched < 0 else sched
    s.blob = data[_HEAD_SIZE:]
    return s


class ConnState(State):
    """An open incoming connection (appliance, ICID)."""

    __slots__ = ("folded", "folded_n")

    def __init__(self, ident: int) -> None:
        super().__init__(ident)
        self.folded: str | None = None
        """The client its messages join, folded from its facts once per change, as compact
        text (``records.fold_client_text``; None: the facts give none)."""
        self.folded_n = -1
        """The fact count ``folded`` was folded at (-1: not yet)."""


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
        self.msgs: dict[int, MsgState | bytes] = {}
        """MID -> the message; a waiting one packed (:func:`pack`)."""
        self.conns: dict[int, ConnState] = {}
        self.dlvs: dict[int, DlvState] = {}
        self.buckets: dict[int, list[State | int]] = {}
        """Second -> states to look at when the watermark reaches it: the objects, or the MID of
        a message that was packed when it was scheduled (at most one such entry a message, its
        ``sched``)."""
        self.heap: list[int] = []
        """The seconds of ``buckets``, as a heap."""

    def msg(self, mid: int) -> MsgState | None:
        """The message ``mid`` as an object (a packed one is unpacked and kept so), or None."""
        s = self.msgs.get(mid)
        if isinstance(s, bytes):
            s = self.msgs[mid] = unpack(mid, s)
        return s

    def peek(self, mid: int) -> tuple[MsgState | None, bool]:
        """(the message ``mid`` as an object, whether that is the one the table keeps): a packed
        message is unpacked into a copy, to be read and dropped, the table left as it was."""
        s = self.msgs.get(mid)
        if isinstance(s, bytes):
            return unpack(mid, s), False
        return s, True
