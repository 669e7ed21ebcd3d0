"""The correlation engine: events in, message and connection records out.

Pure and single-threaded: no I/O, no wall clock. Time is log time: each appliance has a
watermark (the latest time seen in its lines) and everything that waits (the grace period
before a record is emitted, the retention of finished state, the expiry horizons) waits for the
watermark, so the same lines give the same records whether they are replayed from a file in a
second or streamed over days.

How it stays correct under the delivery it gets:

- **Duplicates** (at-least-once delivery): a state is a set of facts; a line seen twice adds
  nothing, so records and revisions are as if it came once.
- **Reordering** within the grace period: records are folded from the facts sorted by
  (time, rank, text); a record is emitted once the watermark has passed its latest line by
  ``grace_seconds``, so the late lines of that window are in it. With ``emit_at_finish`` a
  message's record is also emitted the moment its ``Message finished`` line is applied (what
  a user searching for it sees within seconds); lines that come within the grace after it
  re-emit it at the same time as without the option, so the last revision in that window is
  the same record for any order of its lines, and a stream in order emits it once.
- **Late changes** (a delayed recipient delivered hours later, a release, a bounce line after
  the finish): the state is kept (``retain_seconds`` after the finish, up to the horizon while
  open) and the record is re-emitted with the same id and a higher revision.
- **Bounded state**: an open message expires ``message_horizon`` after its latest line
  (default 80 h, beyond the 72 h retry window) and a connection ``connection_horizon`` after
  its latest line; expiry emits the record (``complete: false, expired: true``), never drops it
  silently.
- **Restarts**: every state exports to bytes under a string key
  (``"esa1|m|12345"``, ``"esa1|c|5"``, ``"esa1|d|8"``, and ``"esa1|w|0"`` for the
  watermark); a fresh engine restored from those entries continues exactly like one that never
  stopped. :meth:`Correlator.dirty_keys` says which keys changed since it was last asked.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Final

import orjson

from streams import events as ev
from streams.correlate import facts as fc
from streams.correlate.facts import (
    ENGINE_CODES,
    FS,
    SEP,
    VERDICT_CODES,
    flag,
    join,
    opt,
    rid_text,
    shorten,
)
from streams.correlate.records import (
    Record,
    connection_record,
    delivery_address,
    kept_addresses,
    message_record,
    record_id,
    snapshot_client,
)
from streams.correlate.state import (
    CHILD,
    DONE,
    EXPIRED,
    HELD,
    PARENT,
    PENDING,
    ConnState,
    DlvState,
    Host,
    MsgState,
    State,
    pack,
    unpack,
)
from streams.settings import Settings

HOUR: Final = 3600.0
_MIN_TS: Final = 0.0
_MAX_TS: Final = 253402300800.0
"""Log times outside [1970, 10000) are treated as absent (they cannot be dated in a record)."""

_Handler = Callable[[Host, ev.Event], None]


class Correlator:
    """Joins the events of each appliance into message and connection records.

    ``apply(event)`` returns the records emitted or re-emitted because of that event (usually
    none: records wait for the grace period); ``advance`` moves an appliance's watermark without
    a line (an idle appliance); ``flush`` emits all open state at the end of the input.
    """

    def __init__(
        self,
        *,
        grace_seconds: float = 10.0,
        message_horizon: float = 80 * HOUR,
        connection_horizon: float = 2 * HOUR,
        retain_seconds: float = 900.0,
        default_host: str = "esa",
        track_dirty: bool = False,
        max_facts: int = 2000,
        emit_at_finish: bool = False,
    ) -> None:
        if grace_seconds < 0 or message_horizon <= 0 or connection_horizon <= 0:
            raise ValueError("grace must be >= 0 and horizons > 0")
        self.grace = float(grace_seconds)
        self.message_horizon = float(message_horizon)
        self.connection_horizon = float(connection_horizon)
        self.retain = max(float(retain_seconds), self.grace)
        self.default_host = default_host
        self.track_dirty = track_dirty
        self.max_facts = max_facts
        self.emit_at_finish = emit_at_finish
        """Emit a message's record as soon as its ``Message finished`` line is applied (a
        provisional revision), and again after the grace period only if lines within it changed
        the record. The final revision is the same either way."""
        self.lines = 0
        """Events applied."""
        self.counts: Counter[str] = Counter()
        """``unknown`` (unparsed lines), ``unrouted`` (no id to join on),
        ``duplicates``, ``overflow`` (facts beyond ``max_facts``), ``messages``,
        ``connections`` (records emitted), ``expired``."""
        self._hosts: dict[str, Host] = {}
        self._dirty: set[tuple[str, str, int]] = set()
        self._out: list[Record] = []
        self._retired: list[str] = []
        self._horizon: dict[type, float] = {
            MsgState: self.message_horizon, ConnState: self.connection_horizon,
            DlvState: self.connection_horizon,
        }
        self._dispatch: dict[str, _Handler] = self._handlers()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Correlator:
        """An engine configured from the ``ESATRACK_*`` settings."""
        options: dict[str, Any] = {
            "grace_seconds": settings.grace_seconds,
            "message_horizon": settings.message_horizon_hours * HOUR,
            "connection_horizon": settings.connection_horizon_hours * HOUR,
            "default_host": settings.default_host,
            "retain_seconds": settings.retain_finished_seconds,
            "emit_at_finish": settings.emit_at_finish,
        }
        options.update(overrides)
        return cls(**options)

    # --- Driving --------------------------------------------------------------------------

    def apply(self, event: ev.Event) -> list[Record]:
        """Apply one event; the records emitted because of it (in emission order)."""
        out: list[Record] = []
        self._out = out
        self.lines += 1
        name = event.host or self.default_host
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = Host(name)
        ts = event.ts
        if ts is not None and not _MIN_TS <= ts < _MAX_TS:  # NaN, infinities, year > 9999
            self.counts["bad_time"] += 1
            event = replace(event, ts=None)
            ts = None
        if ts is not None and ts > host.wm:
            host.wm = ts
            if self.track_dirty:
                self._dirty.add((name, "w", 0))
            if host.heap and host.heap[0] <= ts:
                self._run_due(host)
        handler = self._dispatch.get(event.kind)
        if handler is None:
            self.counts["unknown" if event.kind == ev.UNKNOWN else "other"] += 1
        else:
            handler(host, event)
        return out

    def apply_all(self, events: Iterable[ev.Event]) -> list[Record]:
        """Apply many events; all records they emitted."""
        out: list[Record] = []
        for event in events:
            out.extend(self.apply(event))
        return out

    def advance(self, watermark: float, host: str | None = None) -> list[Record]:
        """Move the watermark of ``host`` (every appliance when ``None``) to ``watermark`` log
        time, if that is later; the records that became due."""
        out: list[Record] = []
        self._out = out
        targets = list(self._hosts.values()) if host is None else [
            self._hosts.setdefault(host, Host(host))]
        for h in targets:
            if watermark > h.wm:
                h.wm = watermark
                if self.track_dirty:
                    self._dirty.add((h.name, "w", 0))
                self._run_due(h)
        self._out = []  # the caller owns the records now
        return out

    def flush(self) -> list[Record]:
        """End of input: emit every state with changes not yet emitted (open messages come out
        with ``complete: false``). The state stays; applying more lines continues from it."""
        out: list[Record] = []
        self._out = out
        for name in sorted(self._hosts):
            host = self._hosts[name]
            for icid in sorted(host.conns):
                if host.conns[icid].flags & PENDING:
                    self._emit(host, host.conns[icid])
            for mid in sorted(host.msgs):
                msg = host.msgs[mid]
                if not isinstance(msg, bytes) and msg.flags & PENDING:  # packed: emitted
                    self._emit(host, msg)
        self._out = []  # the caller owns the records now
        return out

    def retired_ids(self) -> list[str]:
        """Ids of records whose state was dropped since the last call: their last emitted
        revision is final (the offline command writes them out then)."""
        ids, self._retired = self._retired, []
        return ids

    # --- Introspection --------------------------------------------------------------------

    def watermark(self, host: str) -> float | None:
        """The watermark of ``host``, or ``None`` before its first timed line."""
        h = self._hosts.get(host)
        return None if h is None or h.wm == float("-inf") else h.wm

    def open_counts(self) -> dict[str, int]:
        """How many messages, connections and delivery connections are held."""
        return {
            "messages": sum(len(h.msgs) for h in self._hosts.values()),
            "connections": sum(len(h.conns) for h in self._hosts.values()),
            "deliveries": sum(len(h.dlvs) for h in self._hosts.values()),
        }

    # --- Persistence ----------------------------------------------------------------------

    def dirty_keys(self) -> list[str]:
        """Keys whose state changed (or went) since the last call, sorted; with
        ``track_dirty=True`` only. Write ``export(key)`` for each (``None``: delete it)."""
        keys = sorted(f"{host}|{kind}|{ident}" for host, kind, ident in self._dirty)
        self._dirty.clear()
        return keys

    def state_keys(self) -> list[str]:
        """Every key that has state now, sorted."""
        out: list[str] = []
        for host in self._hosts.values():
            if host.wm != float("-inf"):
                out.append(f"{host.name}|w|0")
            out.extend(f"{host.name}|m|{mid}" for mid in host.msgs)
            out.extend(f"{host.name}|c|{icid}" for icid in host.conns)
            out.extend(f"{host.name}|d|{dcid}" for dcid in host.dlvs)
        return sorted(out)

    def export(self, key: str) -> bytes | None:
        """The state under ``key`` as bytes, or ``None`` when there is none (delete it)."""
        name, kind, ident = _split_key(key)
        host = self._hosts.get(name)
        if host is None:
            return None
        if kind == "w":
            return None if host.wm == float("-inf") else orjson.dumps(host.wm)
        table = _table(host, kind)
        s = table.get(ident)
        if s is None:
            return None
        if isinstance(s, bytes):
            s = unpack(ident, s)
        blob, base, client, ext = s.unpacked()
        return orjson.dumps([blob, base, s.maxts, s.n, s.emitted, s.flags, client, ext])

    def restore(self, key: str, data: bytes) -> None:
        """Put back the state ``export(key)`` gave (into a fresh engine, before applying)."""
        name, kind, ident = _split_key(key)
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = Host(name)
        value = orjson.loads(data)
        if kind == "w":
            host.wm = max(host.wm, float(value))
            return
        cls: type[State] = {"m": MsgState, "c": ConnState, "d": DlvState}[kind]
        s = cls(ident)
        (s.blob, s.base, s.maxts, s.n, s.emitted, s.flags) = value[:6]
        if isinstance(s, MsgState):
            s.client, s.ext = value[6], value[7]
        _table(host, kind)[ident] = s
        if isinstance(s, MsgState) and not s.flags & PENDING and (
                not s.flags & DONE or s.flags & HELD):
            self._park(host, s)
        else:
            self._schedule(host, s, None)

    # --- Internals: scheduling ------------------------------------------------------------

    def _bucket(self, s: State) -> int | None:
        """The watermark second at which ``s`` needs looking at (emit, retire or expire)."""
        if s.maxts is None:
            return None
        flags = s.flags
        if flags & PENDING:
            deadline = s.maxts + self.grace
        elif flags & DONE and not flags & HELD:
            deadline = s.maxts + self.retain
        else:
            deadline = s.maxts + self._horizon[type(s)]
        return int(deadline) + 1

    def _schedule(self, host: Host, s: State, old: int | None) -> None:
        new = self._bucket(s)
        if new is None or new == old:
            return
        bucket = host.buckets.get(new)
        if bucket is None:
            host.buckets[new] = [s]
            heapq.heappush(host.heap, new)
        else:
            bucket.append(s)

    def _park(self, host: Host, s: MsgState) -> None:
        """Keep a waiting message packed, with one entry by MID at the second it falls due
        (where an object's entry would be: the order states are looked at stays the same)."""
        due = self._bucket(s)
        if s.sched != due:
            self._unwake(host, s)
            if due is not None:
                s.sched = due
                bucket = host.buckets.get(due)
                if bucket is None:
                    host.buckets[due] = [s.ident]
                    heapq.heappush(host.heap, due)
                else:
                    bucket.append(s.ident)
        host.msgs[s.ident] = pack(s)

    def _unwake(self, host: Host, s: MsgState) -> None:
        """Take the entry by MID of ``s`` out of its bucket (it has been rescheduled or goes)."""
        sched = s.sched
        if sched is not None:
            s.sched = None
            bucket = host.buckets.get(sched)
            if bucket is not None and s.ident in bucket:
                bucket.remove(s.ident)

    def _wake_packed(self, host: Host, mid: int, second: int) -> MsgState | None:
        """The message of an entry by MID that came due at ``second`` if that is still its
        due second (kept as an object in the table then), else None (it has other entries)."""
        value = host.msgs.get(mid)
        if value is None:
            return None
        s = unpack(mid, value) if isinstance(value, bytes) else value
        if s.sched != second:
            return None
        s.sched = None  # the entry is used up
        if s is not value:  # packed: unchanged since it was scheduled
            host.msgs[mid] = s
        elif self._bucket(s) != second:
            return None  # unpacked and rescheduled since: it has an object entry
        return s

    def _run_due(self, host: Host) -> None:
        heap, buckets = host.heap, host.buckets
        while heap and heap[0] <= host.wm:
            second = heapq.heappop(heap)
            for item in buckets.pop(second, ()):
                if isinstance(item, int):
                    found = self._wake_packed(host, item, second)
                    if found is None:
                        continue
                    s: State = found
                else:
                    s = item
                    if self._bucket(s) != second or _table(host, _kind(s)).get(s.ident) is not s:
                        continue  # rescheduled since, or gone
                if s.flags & PENDING:
                    self._emit(host, s)
                elif isinstance(s, MsgState) and s.flags & DONE and not s.flags & HELD and \
                        _held(s):
                    s.flags |= HELD  # finished in a quarantine: wait for the release
                    self._touched(host, s)
                    self._park(host, s)
                elif (s.flags & DONE and not s.flags & HELD) or isinstance(s, DlvState):
                    self._drop(host, s)
                else:
                    self._expire(host, s)

    def _emit(self, host: Host, s: State) -> None:
        """Emit the record of ``s`` if it changed since the last emission; reschedule."""
        old = self._bucket(s)
        s.flags &= ~PENDING
        record: Record | None = None
        revision = 0
        if isinstance(s, MsgState):
            record, revision = message_record(host, s)
        elif isinstance(s, ConnState):
            record, revision = connection_record(host, s)
        if record is not None and revision > s.emitted:
            s.emitted = revision
            self._out.append(record)
            self.counts["messages" if isinstance(s, MsgState) else "connections"] += 1
        self._touched(host, s)
        if isinstance(s, MsgState):
            s.flags &= ~HELD  # looked at again when retained time is up
            if not s.flags & (DONE | EXPIRED):
                self._park(host, s)  # open and waiting: kept packed until its next line
                return
        self._schedule(host, s, old)

    def _drop(self, host: Host, s: State) -> None:
        if isinstance(s, ConnState):
            self._hand_client_over(host, s)
            if s.emitted:
                self._retired.append(_record_id(host, s, "c"))
        elif isinstance(s, MsgState):
            self._unwake(host, s)
            if s.emitted:
                self._retired.append(_record_id(host, s, "m"))
        del _table(host, _kind(s))[s.ident]
        self._touched(host, s)

    def _expire(self, host: Host, s: State) -> None:
        """Horizon reached without a finish: emit what is known, marked expired, and drop."""
        s.flags |= EXPIRED | PENDING
        self.counts["expired"] += 1
        self._emit(host, s)
        self._drop(host, s)

    def _hand_client_over(self, host: Host, conn: ConnState) -> None:
        """A connection is going: its messages keep a snapshot of its client."""
        mids = [int(f[0]) for f in fc.codes_in(conn.text(), fc.C_MID) if f and f[0].isdigit()]
        if not mids:
            return
        snapshot = snapshot_client(conn)
        if snapshot is None:
            return
        for mid in mids:
            value = host.msgs.get(mid)
            if value is None:
                continue
            msg = unpack(mid, value) if isinstance(value, bytes) else value
            frozen = type(msg.blob) is bytes
            if frozen:
                msg.thaw()
            if msg.client is None:
                msg.client = snapshot
                self._touched(host, msg)
                if msg is not value:
                    host.msgs[mid] = pack(msg)  # still waits for its wake entry (sched)
                elif frozen:
                    msg.freeze()
            elif frozen and msg is value:
                msg.freeze()

    def _touched(self, host: Host, s: State) -> None:
        if self.track_dirty:
            self._dirty.add((host.name, _kind(s), s.ident))

    def _wake(self, host: Host, s: State) -> None:
        """Something ``s`` joins changed: look at its record again after the grace period."""
        if s.flags & PENDING:
            return
        old = self._bucket(s)
        s.flags |= PENDING
        self._touched(host, s)
        self._schedule(host, s, old)

    # --- Internals: adding facts ----------------------------------------------------------

    def _add(self, host: Host, s: State, code: str, ts: float | None,
             values: tuple[object, ...]) -> bool:
        """Add one fact to ``s``; False if it was already there (a duplicate line)."""
        if type(s.blob) is bytes:
            s.thaw()  # a waiting message gets a line: it stays thawed until emitted again
        try:  # the common case, inline: all fields are str without separators
            rest = FS.join(values)  # type: ignore[arg-type]  # non-str values: TypeError
            if SEP in rest or rest.count(FS) != len(values) - 1:
                rest = join(values)
        except TypeError:
            rest = join(values)
        if ts is None:
            fact = f"{code}{FS}{rest}"
        else:
            ms = int(ts * 1000.0 + 0.5)
            base = s.base
            if base is None:
                s.base = base = ms
            fact = f"{code}{ms - base}{FS}{rest}"
        blob = s.blob
        assert isinstance(blob, str)
        if f"{SEP}{fact}{SEP}" in blob:
            self.counts["duplicates"] += 1
            return False
        if s.n >= self.max_facts:
            self.counts["overflow"] += 1
            return False
        s.blob = f"{blob}{fact}{SEP}"
        s.n += 1
        # Reschedule only when the second the state falls due in changes.
        flags = s.flags
        maxts = s.maxts
        grace = self.grace
        second: int | None = None
        if ts is not None and (maxts is None or ts > maxts):
            s.maxts = ts
            if not flags & PENDING or maxts is None or int(ts + grace) != int(maxts + grace):
                second = int(ts + grace) + 1
        elif not flags & PENDING and maxts is not None:
            second = int(maxts + grace) + 1  # a late line: due now
        s.flags = flags | PENDING
        if second is not None:
            bucket = host.buckets.get(second)
            if bucket is None:
                host.buckets[second] = [s]
                heapq.heappush(host.heap, second)
            else:
                bucket.append(s)
        if self.track_dirty:
            self._dirty.add((host.name, _kind(s), s.ident))
        return True

    def _msg(self, host: Host, mid: int) -> MsgState:
        s = host.msg(mid)
        if s is None:
            s = host.msgs[mid] = MsgState(mid)
        return s

    def _conn(self, host: Host, icid: int) -> ConnState:
        s = host.conns.get(icid)
        if s is None:
            s = host.conns[icid] = ConnState(icid)
        return s

    def _dlv(self, host: Host, dcid: int) -> DlvState:
        s = host.dlvs.get(dcid)
        if s is None:
            s = host.dlvs[dcid] = DlvState(dcid)
        return s

    def _msg_fact(self, host: Host, e: ev.Event, code: str, values: tuple[object, ...]) -> None:
        mid = e.mid
        if mid is None:
            self.counts["unrouted"] += 1
            return
        value = host.msgs.get(mid)
        if value is None:
            s = host.msgs[mid] = MsgState(mid)
        elif isinstance(value, bytes):
            s = host.msgs[mid] = unpack(mid, value)
        else:
            s = value
        if self._add(host, s, code, e.ts, values):
            if s.flags & CHILD and code in fc.INHERITED_CODES:
                self._wake_children(host, s)
        elif isinstance(value, bytes) and s.n < self.max_facts:
            host.msgs[mid] = value  # the same line again: it stays packed as it was

    def _wake_children(self, host: Host, s: MsgState) -> None:
        for fields in fc.codes_in(s.text(), fc.CHILD_CODES):
            child = host.msg(int(fields[0])) if fields and fields[0].isdigit() else None
            if child is not None and child.emitted:
                self._wake(host, child)

    def _replace_if_new(self, host: Host, s: State, code: str, ts: float | None,
                        values: tuple[object, ...]) -> bool:
        """``s`` already has a start fact (``code``) and this one differs: the id was reused
        (counter wrap, appliance reinstall). Emit and drop the old state; True if dropped."""
        blob = s.text()
        if f"{SEP}{code}" not in blob:
            return False
        rest = join(values)
        probe = f"{code}{FS}{rest}" if ts is None or s.base is None else \
            f"{code}{int(ts * 1000.0 + 0.5) - s.base}{FS}{rest}"
        if f"{SEP}{probe}{SEP}" in blob:
            return False  # the same line again
        self.counts["reused_ids"] += 1
        if isinstance(s, MsgState):
            host.msgs[s.ident] = s  # it may be an unpacked copy (Host.peek)
        if s.flags & PENDING or not s.emitted:
            if not s.flags & DONE:
                s.flags |= EXPIRED
            s.flags |= PENDING
            self._emit(host, s)
        self._drop(host, s)
        return True

    # --- Handlers, one per kind -----------------------------------------------------------

    def _handlers(self) -> dict[str, _Handler]:
        return {
            ev.CONN_NEW: self._on_conn_new,
            ev.CONN_POLICY: self._on_conn_policy,
            ev.CONN_TLS: self._on_conn_tls,
            ev.CONN_AUTH: self._on_conn_auth,
            ev.CONN_CLOSE: self._on_conn_close,
            ev.MSG_START: self._on_msg_start,
            ev.MSG_FROM: self._on_msg_from,
            ev.MSG_RCPT: self._on_msg_rcpt,
            ev.MSG_MESSAGE_ID: self._on_msg_message_id,
            ev.MSG_SUBJECT: self._on_msg_subject,
            ev.MSG_READY: self._on_msg_ready,
            ev.MSG_POLICY: self._on_msg_policy,
            ev.MSG_VERDICT: self._on_msg_verdict,
            ev.MSG_ATTACHMENT: self._on_msg_attachment,
            ev.MSG_URL: self._on_msg_url,
            ev.MSG_CUSTOM: self._on_msg_custom,
            ev.MSG_INFO: self._on_msg_info,
            ev.MSG_QUARANTINE: self._on_msg_quarantine,
            ev.MSG_RELEASE: self._on_msg_release,
            ev.MSG_REWRITE: self._on_msg_rewrite,
            ev.MSG_SPLIT: self._on_msg_split,
            ev.MSG_GENERATED: self._on_msg_generated,
            ev.MSG_QUEUED: self._on_msg_queued,
            ev.MSG_ABORTED: self._on_msg_aborted,
            ev.MSG_FINISHED: self._on_msg_finished,
            ev.DLV_NEW: self._on_dlv_new,
            ev.DLV_TLS: self._on_dlv_tls,
            ev.DLV_CLOSE: self._on_dlv_close,
            ev.DLV_START: self._on_dlv_start,
            ev.DLV_DONE: self._on_dlv_done,
            ev.DLV_RESPONSE: self._on_dlv_response,
            ev.DLV_BOUNCED: self._on_dlv_bounced,
            ev.DLV_DELAYED: self._on_dlv_delayed,
            ev.DLV_PENDING: self._on_dlv_pending,
            ev.BOUNCE_LOG: self._on_bounce_log,
            ev.CEF: self._on_cef,
        }

    # Connections

    def _conn_fact(self, host: Host, e: ev.Event, code: str, values: tuple[object, ...]) -> None:
        icid = e.icid
        if icid is None:
            self.counts["unrouted"] += 1
            return
        s = self._conn(host, icid)
        if self._add_conn(host, s, code, e.ts, values) and f"{SEP}{fc.C_MID}" in s.text():
            for fields in fc.codes_in(s.text(), fc.C_MID):
                msg = host.msg(int(fields[0])) if fields and fields[0].isdigit() else None
                if msg is None:
                    continue
                if msg.emitted:
                    self._wake(host, msg)
                if msg.flags & CHILD:
                    self._wake_children(host, msg)  # they inherit its client

    def _on_conn_new(self, host: Host, e: ev.Event) -> None:
        d = e.data
        verified = d.get("rdns_verified")
        values = (d.get("interface") or "", d.get("interface_ip") or "", d.get("ip") or "",
                  d.get("rdns") or "", "" if verified is None else ("1" if verified else "0"))
        if e.icid is not None:
            old = host.conns.get(e.icid)
            if old is not None:
                self._replace_if_new(host, old, fc.C_NEW, e.ts, values)
        self._conn_fact(host, e, fc.C_NEW, values)

    def _on_conn_policy(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._conn_fact(host, e, fc.C_POLICY, (
            d.get("action") or "", d.get("sender_group") or "", d.get("match") or "",
            opt(d.get("sbrs")), d.get("country") or "", flag(d.get("delayed"))))

    def _on_conn_tls(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._conn_fact(host, e, fc.C_TLS, (
            flag(d.get("success")), d.get("protocol") or "", d.get("cipher") or "",
            d.get("error") or ""))

    def _on_conn_auth(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._conn_fact(host, e, fc.C_AUTH, (
            flag(d.get("success")), d.get("user") or "", d.get("mechanism") or "",
            d.get("profile") or ""))

    def _on_conn_close(self, host: Host, e: ev.Event) -> None:
        icid = e.icid
        if icid is None:
            self.counts["unrouted"] += 1
            return
        s = self._conn(host, icid)
        if self._add_conn(host, s, fc.C_CLOSE, e.ts, (flag(e.data.get("lost")),)):
            s.flags |= DONE

    def _link_conn(self, host: Host, e: ev.Event) -> None:
        """The connection learns it carried this MID (one fact per MID, no time)."""
        if e.icid is None or e.mid is None or e.icid == 0:
            return  # ICID 0: messages the appliance generated itself
        s = self._conn(host, e.icid)
        if f"{SEP}{fc.C_MID}{FS}{e.mid}{SEP}" not in s.text():
            self._add_conn(host, s, fc.C_MID, None, (str(e.mid),))

    def _add_conn(self, host: Host, s: ConnState, code: str, ts: float | None,
                  values: tuple[object, ...]) -> bool:
        """``_add`` for a connection: a fact that is not about the client (a MID it carried,
        its close) keeps the client its messages join folded (they fold it once, not once per
        message emitted between its lines)."""
        fresh = s.folded_n == s.n
        added = self._add(host, s, code, ts, values)
        if added and fresh and code not in fc.CLIENT_CODES:
            s.folded_n = s.n
        return added

    # Messages

    def _on_msg_start(self, host: Host, e: ev.Event) -> None:
        mid = e.mid
        values = (opt(e.icid),)
        if mid is not None:
            old, _kept = host.peek(mid)  # a packed one stays packed unless the MID is reused
            if old is not None:
                self._replace_if_new(host, old, fc.M_START, e.ts, values)
        self._msg_fact(host, e, fc.M_START, values)
        self._link_conn(host, e)

    def _on_msg_from(self, host: Host, e: ev.Event) -> None:
        self._msg_fact(host, e, fc.M_FROM, (e.data.get("sender") or "", opt(e.icid)))
        self._link_conn(host, e)

    def _on_msg_rcpt(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_RCPT, (
            opt(d.get("rid")), d.get("address") or "", flag(d.get("rejected")),
            d.get("reason") or "", opt(e.icid)))

    def _on_msg_message_id(self, host: Host, e: ev.Event) -> None:
        self._msg_fact(host, e, fc.M_MSGID, (e.data.get("message_id") or "",))

    def _on_msg_subject(self, host: Host, e: ev.Event) -> None:
        subject = e.data.get("subject")
        self._msg_fact(host, e, fc.M_SUBJECT, ("" if subject is None else subject,))

    def _on_msg_ready(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_READY, (opt(d.get("size")), d.get("sender") or ""))

    def _on_msg_policy(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_POLICY, (
            d.get("policy") or "", d.get("direction") or "", rid_text(d.get("rids"))))

    def _on_msg_verdict(self, host: Host, e: ev.Event) -> None:
        d = e.data
        engine = d.get("engine") or ""
        verdict = d.get("verdict") or ""
        self._msg_fact(host, e, fc.M_INTERIM if d.get("interim") else fc.M_VERDICT, (
            shorten(engine, ENGINE_CODES) if type(engine) is str else engine,
            shorten(verdict, VERDICT_CODES) if type(verdict) is str else verdict,
            d.get("detail") or "", d.get("virus_name") or ""))

    def _on_msg_attachment(self, host: Host, e: ev.Event) -> None:
        self._msg_fact(host, e, fc.M_ATTACH, (e.data.get("name") or "",))

    def _on_msg_url(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_URL, (d.get("url") or "", d.get("detail") or ""))

    def _on_msg_custom(self, host: Host, e: ev.Event) -> None:
        self._msg_fact(host, e, fc.M_CUSTOM, (e.data.get("text") or "",))

    def _on_msg_info(self, host: Host, e: ev.Event) -> None:
        self._msg_fact(host, e, fc.M_INFO, (e.data.get("text") or e.body,))

    def _on_msg_quarantine(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_QUAR, (
            d.get("name") or "", d.get("via") or "", flag(d.get("central"))))

    def _on_msg_release(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_RELEASE, (d.get("name") or "", d.get("reason") or ""))

    def _lineage(self, host: Host, e: ev.Event, parent: int, child: int, *, codes: str,
                 rest: tuple[object, ...], create_parent: bool) -> None:
        """One lineage line is a fact of both MIDs: ``X -> child`` on the parent and
        ``X <- parent`` on the child."""
        if parent == child:
            self.counts["unrouted"] += 1
            return
        p = host.msg(parent)
        if p is None and create_parent:
            p = self._msg(host, parent)
        c = self._msg(host, child)
        to_code, from_code = codes[0], codes[1]
        if p is not None:
            p.flags |= CHILD
            self._add(host, p, to_code, e.ts, (str(child), *rest))
        c.flags |= PARENT
        self._add(host, c, from_code, e.ts, (str(parent), *rest))

    def _on_msg_rewrite(self, host: Host, e: ev.Event) -> None:
        new = e.data.get("new_mid")
        if e.mid is None or type(new) is not int or new < 0:
            self.counts["unrouted"] += 1
            return
        self._lineage(host, e, e.mid, new, codes=fc.M_REWRITE_TO + fc.M_REWRITE_FROM,
                      rest=(e.data.get("reason") or "",), create_parent=True)

    def _on_msg_split(self, host: Host, e: ev.Event) -> None:
        d = e.data
        new = d.get("new_mid")
        if e.mid is None or type(new) is not int or new < 0:
            self.counts["unrouted"] += 1
            return
        self._lineage(host, e, e.mid, new, codes=fc.M_SPLIT_TO + fc.M_SPLIT_FROM,
                      rest=(d.get("policy") or "", d.get("direction") or ""),
                      create_parent=True)

    def _on_msg_generated(self, host: Host, e: ev.Event) -> None:
        d = e.data
        parent = d.get("parent_mid")
        if e.mid is None or type(parent) is not int or parent < 0:
            self.counts["unrouted"] += 1
            return
        self._lineage(host, e, parent, e.mid, codes=fc.M_GEN_TO + fc.M_GEN_FROM,
                      rest=(d.get("reason") or "", flag(d.get("bounce"))), create_parent=False)

    def _on_msg_queued(self, host: Host, e: ev.Event) -> None:
        self._msg_fact(host, e, fc.M_QUEUED, ("",))

    def _on_msg_aborted(self, host: Host, e: ev.Event) -> None:
        self._msg_fact(host, e, fc.M_ABORTED, (e.data.get("reason") or "",))

    def _on_msg_finished(self, host: Host, e: ev.Event) -> None:
        mid = e.mid
        if mid is None:
            self.counts["unrouted"] += 1
            return
        s = self._msg(host, mid)
        if self._add(host, s, fc.M_FINISHED, e.ts, (e.data.get("outcome") or "",)):
            s.flags |= DONE
            if self.emit_at_finish and _joins_settled(host, s):
                self._emit(host, s)  # provisional: lines within the grace re-emit it

    # Deliveries

    def _dlv_fact(self, host: Host, e: ev.Event, code: str, values: tuple[object, ...]) -> None:
        dcid = e.dcid
        if dcid is None:
            self.counts["unrouted"] += 1
            return
        s = self._dlv(host, dcid)
        if self._add(host, s, code, e.ts, values) and code == fc.D_CLOSE:
            s.flags |= DONE

    def _on_dlv_new(self, host: Host, e: ev.Event) -> None:
        d = e.data
        values = (d.get("interface") or "", d.get("ip") or "", opt(d.get("port")))
        if e.dcid is not None:
            old = host.dlvs.get(e.dcid)
            if old is not None:
                self._replace_if_new(host, old, fc.D_NEW, e.ts, values)
        self._dlv_fact(host, e, fc.D_NEW, values)

    def _on_dlv_tls(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._dlv_fact(host, e, fc.D_TLS, (
            flag(d.get("success")), d.get("protocol") or "", d.get("cipher") or "",
            d.get("error") or ""))

    def _on_dlv_close(self, host: Host, e: ev.Event) -> None:
        self._dlv_fact(host, e, fc.D_CLOSE, ("",))

    def _on_dlv_start(self, host: Host, e: ev.Event) -> None:
        self._msg_fact(host, e, fc.M_DLV_START, (opt(e.dcid), rid_text(e.data.get("rids"))))

    def _on_dlv_done(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_DONE, (
            opt(e.dcid), rid_text(d.get("rids")), flag(d.get("external_quarantine"))))

    def _on_dlv_response(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_RESPONSE, (rid_text(d.get("rids")), d.get("response") or ""))

    def _outcome(self, code: str, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, code, (
            opt(e.dcid), rid_text(d.get("rids")), d.get("code") or "", d.get("reason") or "",
            d.get("response") or ""))

    def _on_dlv_bounced(self, host: Host, e: ev.Event) -> None:
        self._outcome(fc.M_BOUNCED, host, e)

    def _on_dlv_delayed(self, host: Host, e: ev.Event) -> None:
        self._outcome(fc.M_DELAYED, host, e)

    def _on_dlv_pending(self, host: Host, e: ev.Event) -> None:
        d = e.data
        self._msg_fact(host, e, fc.M_PENDING, (rid_text(d.get("rids")), d.get("until") or ""))

    def _on_cef(self, host: Host, e: ev.Event) -> None:
        """A Consolidated Event Log line: one line for the whole message (AsyncOS 13+)."""
        ext = e.data.get("ext")
        if e.mid is None or not isinstance(ext, dict):
            self.counts["other"] += 1
            return
        self._msg_fact(host, e, fc.M_CEF, tuple(ext.get(key) or "" for key in fc.CEF_KEYS))
        s = host.msg(e.mid)
        if s is not None:
            s.flags |= DONE  # logged once the message is done with

    def _on_bounce_log(self, host: Host, e: ev.Event) -> None:
        d = e.data
        delayed = d.get("delayed")
        if delayed is None:  # older parsers: the bounce log's own word says it
            delayed = e.body.lstrip().startswith("Delayed")
        self._msg_fact(host, e, fc.M_BOUNCE_LOG, (
            opt(d.get("rid")), d.get("recipient") or "", d.get("reason") or "",
            d.get("response") or "", d.get("sender") or "", flag(delayed)))


def _kind(s: State) -> str:
    if isinstance(s, MsgState):
        return "m"
    return "c" if isinstance(s, ConnState) else "d"


def _table(host: Host, kind: str) -> dict[int, Any]:
    if kind == "m":
        return host.msgs
    if kind == "c":
        return host.conns
    if kind == "d":
        return host.dlvs
    raise ValueError(f"unknown state kind {kind!r} (expected m, c, d or w)")


def _split_key(key: str) -> tuple[str, str, int]:
    parts = key.split("|")
    if len(parts) < 3 or not parts[-1].lstrip("-").isdigit():
        raise ValueError(f"bad state key {key!r} (expected 'host|m|123')")
    return "|".join(parts[:-2]), parts[-2], int(parts[-1])


def _joins_settled(host: Host, s: MsgState) -> bool:
    """Whether a record of ``s`` emitted now keeps its id and its joins whatever lines come
    later, so that a line within the grace re-emits it with a higher revision (else it waits
    for the grace):

    - the id: it was emitted before (its start time is frozen then) or its ``Start MID`` line
      is in; else a line reordered behind the finish could still be the earliest;
    - a split, rewritten or generated message: its lineage line is in (none of its lines is
      older, so it fixes the id's start like a ``Start MID`` line), and its parent knows it
      as its child (then the parent's later lines, and its connection's, wake it; a generated
      message's parent may come after it and not know it);
    - each delivery connection's remote address: its ``New SMTP DCID`` line is in, or the
      message kept the address already (a delivery connection that learns its address later
      does not wake the messages that used it)."""
    text = s.text()
    lineage = fc.codes_in(text, fc.PARENT_CODES) if s.flags & PARENT else []
    if not s.header() and not lineage and f"{SEP}{fc.M_START}" not in text:
        return False
    mid = str(s.ident)
    for fields in lineage:
        parent = host.peek(int(fields[0]))[0] if fields and fields[0].isdigit() else None
        if parent is None or not parent.flags & CHILD or not any(
                f and f[0] == mid for f in fc.codes_in(parent.text(), fc.CHILD_CODES)):
            return False
    kept: dict[str, str] | None = None
    for fields in fc.codes_in(text, fc.DCID_CODES):
        if not fields or not fields[0].isdigit() or delivery_address(host, int(fields[0])):
            continue
        if kept is None:
            kept = kept_addresses(s)
        if fields[0] not in kept:
            return False
    return True


def _held(s: State) -> bool:
    """The message entered a quarantine more often than it left one."""
    blob = s.text()
    return blob.count(SEP + fc.M_QUAR) > blob.count(SEP + fc.M_RELEASE)


def _record_id(host: Host, s: State, kind: str) -> str:
    return record_id(kind, host.name, s.ident, s.header() or "-")
