"""The shared public samples: per file, what parses and what is (knowingly) unknown.

``sample_expectations.json`` lists, per file, the line count, the count of each kind and the
unknown lines by reason. A line that parsed and stops parsing, or changes kind, fails here; a
deliberate change is recorded by re-running ``tests/parse/sample_support.py`` and reviewing the
diff. The samples live beside the repository (``../shared/samples``), in CI as well.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.parse.sample_support import EXPECTATIONS, SAMPLES, describe, sample_files

if not SAMPLES.is_dir():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"shared samples missing at {SAMPLES}; CI must provide them")
    pytest.skip(f"shared samples not found at {SAMPLES}", allow_module_level=True)

EXPECTED: dict[str, dict[str, Any]] = json.loads(EXPECTATIONS.read_text())
FILES = sample_files()


def _name(path: Path) -> str:
    return str(path.relative_to(SAMPLES))


def test_every_sample_file_has_expectations() -> None:
    """Each sample file is covered by the expectations, and no stale entry remains."""
    assert sorted(_name(path) for path in FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_sample_file_parses_as_recorded(path: Path) -> None:
    """Kinds per file and the unknown lines (by reason) are exactly as recorded."""
    assert describe(path) == EXPECTED[_name(path)]


@pytest.mark.parametrize("path", [p for p in FILES if _name(p).startswith("esa-")], ids=_name)
def test_esa_samples_have_no_unknown_lines_but_blank_ones(path: Path) -> None:
    """In ESA samples (text and CEF) the only unknown lines are blank ones: unknown rate 0."""
    result = describe(path)
    unknown = {reason: lines for reason, lines in result["unknown"].items()
               if reason != "empty line"}
    assert unknown == {}
    blank = len(result["unknown"].get("empty line", []))
    assert blank / result["lines"] < 0.1


@pytest.mark.parametrize("path", [p for p in FILES if _name(p).startswith("wsa/")], ids=_name)
def test_web_proxy_samples_are_never_taken_for_mail(path: Path) -> None:
    """Web proxy lines are unknown with a web-proxy reason (or file housekeeping as system)."""
    result = describe(path)
    kinds = set(result["kinds"])
    assert kinds <= {"unknown", "system"}
    assert all(reason.startswith("wsa ") for reason in result["unknown"])
    assert result["kinds"].get("unknown", 0) >= result["lines"] // 2
