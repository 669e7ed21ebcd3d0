"""Split a TCP syslog byte stream into lines (RFC 6587), choosing the framing per connection.

- Octet counting: ``MSG-LEN SP MSG`` (``MSG-LEN`` is decimal, no leading zero). Chosen when
  the connection's first byte is a digit ``1``-``9``.
- Non-transparent framing: each message ends with LF. Chosen otherwise (a syslog message starts
  with ``<``; a file line starts with a letter). A CR right before the LF belongs to the
  trailer (CRLF senders) and is removed with it; every other byte is kept as received.

Pure: bytes in, lines out; no sockets. Over-long lines (beyond ``max_line``) are skipped, not cut,
and counted in :attr:`FrameDecoder.dropped_overlong`; a broken octet count switches the connection
to LF framing (counted in :attr:`FrameDecoder.framing_errors`) so the bytes still come out raw.
Empty frames (keep-alive newlines) carry nothing and are skipped; they are counted in
:attr:`FrameDecoder.empty`.
"""

from __future__ import annotations

from enum import Enum

_MAX_LEN_DIGITS = 10
_EOL = frozenset(b"\r\n")


class Framing(Enum):
    UNKNOWN = "unknown"
    OCTET_COUNTED = "octet-counted"
    NEWLINE = "newline"


def strip_trailer(line: bytes) -> bytes:
    """The line without its end-of-line bytes (LF, CRLF), for datagrams and file lines."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


class FrameDecoder:
    """Incremental decoder for one TCP connection."""

    __slots__ = ("_buf", "_need", "_skip", "_skip_to_lf", "dropped_overlong", "empty",
                 "framing", "framing_errors", "max_line")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.framing = Framing.UNKNOWN
        self._buf = b""
        self._skip = 0  # octet counting: bytes of an over-long message still to skip
        self._need = -1  # octet counting: length of the message being read, -1 = reading MSG-LEN
        self._skip_to_lf = False  # LF framing: discarding an over-long line up to its LF
        self.dropped_overlong = 0
        self.framing_errors = 0
        self.empty = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The complete lines in ``data`` (with what was buffered before), in order."""
        if self.framing is Framing.UNKNOWN:
            stripped = (self._buf + data).lstrip(b"\r\n")
            if not stripped:
                self._buf = b""
                return []
            self.framing = (Framing.OCTET_COUNTED if stripped[:1] in b"123456789"
                            else Framing.NEWLINE)
            self._buf = b""
            data = stripped
        if self.framing is Framing.NEWLINE:
            return self._feed_lf(data)
        return self._feed_octets(data)

    def finish(self) -> list[bytes]:
        """What is left when the stream ends: a last line without its trailer, if any."""
        rest, self._buf = self._buf, b""
        if self._skip_to_lf or self._skip:
            self._skip_to_lf, self._skip = False, 0
            return []
        if self.framing is Framing.OCTET_COUNTED and self._need >= 0:
            # A message cut short by the end of the stream: keep what arrived, raw.
            self._need = -1
            return [rest] if rest else []
        rest = strip_trailer(rest) if rest.endswith(b"\n") else rest.rstrip(b"\r")
        return [rest] if rest else []

    # --- non-transparent (LF) framing ----------------------------------------------------
    def _feed_lf(self, data: bytes) -> list[bytes]:
        if self._skip_to_lf:
            cut = data.find(b"\n")
            if cut < 0:
                return []
            self._skip_to_lf = False
            data = data[cut + 1:]
        buf = self._buf + data if self._buf else data
        parts = buf.split(b"\n")
        tail = parts.pop()
        if len(tail) > self.max_line:
            self.dropped_overlong += 1
            self._skip_to_lf = True
            tail = b""
        self._buf = tail
        max_line = self.max_line
        if parts and b"\r" not in buf:
            sizes = list(map(len, parts))
            if min(sizes) and max(sizes) <= max_line:
                return parts  # the common case: no CR, no empty or over-long line
        out: list[bytes] = []
        for part in parts:
            line = part[:-1] if part.endswith(b"\r") else part
            if not line:
                self.empty += 1
            elif len(line) > max_line:
                self.dropped_overlong += 1
            else:
                out.append(line)
        return out

    # --- octet counting ------------------------------------------------------------------
    def _feed_octets(self, data: bytes) -> list[bytes]:
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return []
            data = data[self._skip:]
            self._skip = 0
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        while pos < end:
            if self._need < 0:
                if buf[pos] in _EOL:
                    # Some senders add LF after each octet-counted frame: tolerate it.
                    pos += 1
                    continue
                space = buf.find(b" ", pos, pos + _MAX_LEN_DIGITS + 1)
                if space < 0:
                    if end - pos > _MAX_LEN_DIGITS or not buf[pos:end].isdigit():
                        return out + self._broken(buf[pos:])
                    break  # MSG-LEN not complete yet
                digits = buf[pos:space]
                if not digits.isdigit() or digits[:1] == b"0":
                    return out + self._broken(buf[pos:])
                self._need = int(digits)
                pos = space + 1
            need = self._need
            if need > self.max_line:
                self.dropped_overlong += 1
                self._need = -1
                if end - pos >= need:
                    pos += need
                    continue
                self._skip = need - (end - pos)
                pos = end
                break
            if end - pos < need:
                break
            out.append(buf[pos:pos + need])
            pos += need
            self._need = -1
        self._buf = buf[pos:]
        return out

    def _broken(self, rest: bytes) -> list[bytes]:
        """An octet count that is not one: keep the bytes, read the rest as LF-framed."""
        self.framing_errors += 1
        self.framing = Framing.NEWLINE
        self._need = -1
        self._buf = b""
        return self._feed_lf(rest)
