"""Build hook: wheels carry the pure core (parser, correlator) compiled with mypyc.

Everything else about the package is declared in pyproject.toml; this file only adds the
extension modules, built from the list in ``[tool.esatrack.mypyc] modules``. Compiled, the
parser runs ~1.5x and the correlator ~2x faster (docs/PERFORMANCE.md); the ``.py`` files stay in
the wheel beside them, and Python imports the compiled module when both are there.

``ESATRACK_MYPYC`` chooses:

- ``auto`` (default): compile when building a wheel or ``build_ext``; if mypyc or a C compiler
  is missing, or compilation fails, say so and build the pure-Python package instead;
- ``1``: compile, and fail the build if that is not possible (what CI checks);
- ``0``: never compile.

Editable installs (``pip install -e .``, the development set-up) are never compiled: a stale
compiled module would shadow every later edit of its source.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
COMPILING_COMMANDS = {"bdist_wheel", "build_ext", "build"}
CHOICES = {"auto", "1", "0"}


def _say(message: str) -> None:
    print(f"esatrack build: {message}", file=sys.stderr)


def _choice() -> str:
    value = os.environ.get("ESATRACK_MYPYC", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise SystemExit(f"ESATRACK_MYPYC={value!r}: use auto, 1 or 0")
    return value


def _modules() -> list[str]:
    with (HERE / "pyproject.toml").open("rb") as handle:
        return list(tomllib.load(handle)["tool"]["esatrack"]["mypyc"]["modules"])


def _ext_modules(choice: str) -> list[Any]:
    commands = set(sys.argv[1:])
    if choice == "0" or "editable_wheel" in commands or not commands & COMPILING_COMMANDS:
        return []
    try:
        from mypyc.build import mypycify  # noqa: PLC0415 - a build-time dependency only
    except ImportError:
        if choice == "1":
            raise
        _say("mypyc is not installed: building the pure-Python package")
        return []
    # No project mypy config: its pydantic plugin is not in the isolated build environment,
    # and unresolved third-party imports are only typed as Any for compilation.
    options = ["--config-file=", "--ignore-missing-imports"]
    try:
        return list(mypycify([*options, *_modules()], opt_level="3"))
    except (Exception, SystemExit) as exc:  # mypyc reports type errors by exiting
        if choice == "1":
            raise
        _say(f"mypyc could not compile the core ({exc}): building the pure-Python package")
        return []


class _BuildExt(build_ext):
    """``build_ext`` that falls back to pure Python in ``auto`` mode when the C build fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if _choice() == "1" or not self.extensions:
                raise
            _say(f"compiling the core failed ({exc}): the package stays pure Python")
            self.extensions = []


setup(ext_modules=_ext_modules(_choice()), cmdclass={"build_ext": _BuildExt})
