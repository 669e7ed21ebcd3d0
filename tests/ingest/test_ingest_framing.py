"""TCP framing (RFC 6587): LF and octet-counted streams, detected per connection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.ingest.framing import FrameDecoder, Framing, strip_trailer


def _octets(*lines: bytes) -> bytes:
    return b"".join(b"%d %s" % (len(line), line) for line in lines)


def _decode(stream: bytes, max_line: int = 1000, chunk: int | None = None) -> tuple[list[bytes],
                                                                                  FrameDecoder]:
    decoder = FrameDecoder(max_line)
    out: list[bytes] = []
    step = chunk or max(1, len(stream))
    for start in range(0, len(stream), step):
        out += decoder.feed(stream[start:start + step])
    out += decoder.finish()
    return out, decoder


CASES = [
    ("lf", b"<22>a b\n<22>c d\n", [b"<22>a b", b"<22>c d"], Framing.NEWLINE),
    ("crlf trailer removed", b"<22>a\r\n<22>b\r\n", [b"<22>a", b"<22>b"], Framing.NEWLINE),
    ("inner CR kept", b"<22>a\rb\n", [b"<22>a\rb"], Framing.NEWLINE),
    ("last line without LF", b"<22>a\n<22>b", [b"<22>a", b"<22>b"], Framing.NEWLINE),
    ("empty frames skipped", b"\n\n<22>a\n\n<22>b\n", [b"<22>a", b"<22>b"], Framing.NEWLINE),
    ("octet counted", _octets(b"<22>a b", b"<22>c\nd"), [b"<22>a b", b"<22>c\nd"],
     Framing.OCTET_COUNTED),
    ("octet counted with LF between frames", _octets(b"<22>a") + b"\n" + _octets(b"<22>b") + b"\n",
     [b"<22>a", b"<22>b"], Framing.OCTET_COUNTED),
    ("octet counted keeps trailing spaces and CR", _octets(b"<22>a \r"), [b"<22>a \r"],
     Framing.OCTET_COUNTED),
    ("non-UTF-8 bytes kept", b"<22>Subject '\xe9\xff'\n", [b"<22>Subject '\xe9\xff'"],
     Framing.NEWLINE),
    ("file line starting with a letter", b"Wed Nov 19 Info: x\n", [b"Wed Nov 19 Info: x"],
     Framing.NEWLINE),
]


@pytest.mark.parametrize(("name", "stream", "lines", "framing"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("chunk", [None, 1, 3, 7])
def test_framing(name: str, stream: bytes, lines: list[bytes], framing: Framing,
                 chunk: int | None) -> None:
    """Each stream yields its lines, unchanged, however the bytes are split into reads."""
    out, decoder = _decode(stream, chunk=chunk)
    assert out == lines
    assert decoder.framing is framing


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_overlong_lf_line_is_skipped_and_counted(chunk: int | None) -> None:
    """An LF line beyond the cap is dropped whole, counted, and the next line still comes."""
    stream = b"<22>ok1\n" + b"<22>" + b"x" * 50 + b"\n<22>ok2\n"
    out, decoder = _decode(stream, max_line=20, chunk=chunk)
    assert out == [b"<22>ok1", b"<22>ok2"]
    assert decoder.dropped_overlong == 1


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_overlong_octet_frame_is_skipped_and_counted(chunk: int | None) -> None:
    """An octet-counted frame beyond the cap is skipped by its length and counted."""
    stream = _octets(b"<22>ok1", b"<22>" + b"y" * 50, b"<22>ok2")
    out, decoder = _decode(stream, max_line=20, chunk=chunk)
    assert out == [b"<22>ok1", b"<22>ok2"]
    assert decoder.dropped_overlong == 1


def test_broken_octet_count_falls_back_to_lf() -> None:
    """A stream that starts like octet counting but is not keeps its bytes, read as LF lines."""
    out, decoder = _decode(b"12 <22>abcdefghi" + b"2024 Nov x\nnext\n")
    # The first frame is valid (12 bytes); then "2024 Nov x" is not a frame length: LF mode.
    assert out == [b"<22>abcdefgh", b"i2024 Nov x", b"next"]
    assert decoder.framing_errors == 1
    assert decoder.framing is Framing.NEWLINE


def test_truncated_octet_frame_at_end_is_kept() -> None:
    """A frame cut short by the end of the stream still comes out, raw."""
    out, _ = _decode(_octets(b"<22>a") + b"10 <22>b")
    assert out == [b"<22>a", b"<22>b"]


@pytest.mark.parametrize(("raw", "line"), [
    (b"x\n", b"x"), (b"x\r\n", b"x"), (b"x", b"x"), (b"x\r", b"x\r"), (b"\n", b""),
    (b"a\nb\n", b"a\nb"),
])
def test_strip_trailer(raw: bytes, line: bytes) -> None:
    """Only a final LF or CRLF is removed."""
    assert strip_trailer(raw) == line


_LINE = st.binary(max_size=40).map(lambda b: b"<" + b.replace(b"\n", b""))


@given(st.lists(_LINE, min_size=1, max_size=20), st.integers(min_value=1, max_value=50),
       st.booleans())
def test_any_split_same_lines(lines: list[bytes], chunk: int, octet: bool) -> None:
    """Whatever the read sizes, both framings give back exactly the lines sent."""
    expected = [line[:-1] if (not octet and line.endswith(b"\r")) else line for line in lines]
    expected = [line for line in expected if line]
    stream = _octets(*lines) if octet else b"".join(line + b"\n" for line in lines)
    out, _ = _decode(stream, chunk=chunk)
    assert out == expected


@given(st.binary(max_size=400), st.integers(min_value=1, max_value=64))
def test_garbage_never_crashes(stream: bytes, chunk: int) -> None:
    """No byte stream makes the decoder raise, and no line exceeds the cap."""
    out, _ = _decode(stream, max_line=32, chunk=chunk)
    assert all(0 < len(line) <= 32 for line in out)
