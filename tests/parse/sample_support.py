"""Where the shared sample logs are, and what the parser makes of each file (for expectations).

Run as a script to rewrite ``sample_expectations.json`` after a deliberate parser change::

    .venv/bin/python tests/parse/sample_support.py

then review the diff: every line that moved from a kind to ``unknown`` is a regression unless
the change meant it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"
EXPECTATIONS = Path(__file__).with_name("sample_expectations.json")
RECEIVED_AT = 1710700000.0  # fixed receipt time (2024-03-17) so syslog years are stable


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*/*.log"))


def describe(path: Path) -> dict[str, Any]:
    """Line count, kind counts and the unknown lines (1-based numbers) by reason."""
    from streams.parse import Parser  # noqa: PLC0415 - keep the module importable standalone

    with path.open("rb") as handle:
        lines = [line.rstrip(b"\n") for line in handle]
    events = list(Parser(default_host="esa").parse_lines(lines, received_at=RECEIVED_AT))
    unknown: dict[str, list[int]] = {}
    for number, event in enumerate(events, start=1):
        if event.kind == "unknown":
            unknown.setdefault(event.data["reason"], []).append(number)
    return {"lines": len(lines), "kinds": dict(sorted(Counter(e.kind for e in events).items())),
            "unknown": unknown}


def main() -> None:
    result = {str(path.relative_to(SAMPLES)): describe(path) for path in sample_files()}
    EXPECTATIONS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {EXPECTATIONS} ({len(result)} files)")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(REPO))
    main()
