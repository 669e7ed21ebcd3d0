"""What every body handler returns (:data:`Result`), and the field helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.events import UNKNOWN

Result = tuple[str, int | None, int | None, int | None, dict[str, Any]]
"""(kind, icid, mid, dcid, data)."""

Handler = Callable[[str], Result]
"""A first-word handler: the whole body in, its result out."""


def unknown(reason: str) -> Result:
    """An ``unknown`` result with the reason."""
    return (UNKNOWN, None, None, None, {"reason": reason})


def unquote(text: str) -> str:
    """``'x'`` or ``"x"`` -> ``x``; anything else unchanged (subjects come in all quotings)."""
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        return text[1:-1]
    return text


def mail_address(text: str) -> str:
    """``<a@b>`` (possibly followed by ESMTP parameters) -> ``a@b``; a bare address as is."""
    text = text.strip()
    if text[:1] == "<":
        end = text.find(">")
        return text[1:end] if end > 0 else text[1:]
    space = text.find(" ")
    return text if space < 0 else text[:space]


def rid_list(text: str) -> list[int]:
    """``0, 1`` or ``[0, 1]`` -> ``[0, 1]``; non-numbers are skipped."""
    text = text.strip("[] ")
    if len(text) <= 18 and text.isdecimal():  # one recipient, the usual case: no splitting
        return [int(text)]
    return [int(part) for part in (piece.strip() for piece in text.split(","))
            if is_number(part)]


def float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def is_number(text: str) -> bool:
    """Decimal digits that int() takes (Python refuses over 4300 digits; ids are far shorter)."""
    return len(text) <= 18 and text.isdecimal()


def int_or_none(text: str) -> int | None:
    return int(text) if is_number(text) else None


MEMO_LIMIT = 4096
"""Entries a handler's memo of repeated texts (verdicts, TLS, HAT policies) holds before it is
cleared."""
