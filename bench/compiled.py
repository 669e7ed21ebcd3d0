"""The core compiled as wheels ship it, in a temporary copy, for the benchmarks' ``--mypyc`` runs.

The copy is built by the project's own ``setup.py`` (``build_ext --inplace`` with
``ESATRACK_MYPYC=1``), so a benchmark measures exactly the modules listed in pyproject.toml's
``[tool.esatrack.mypyc]``, compiled the way a wheel is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class CompileError(RuntimeError):
    """setup.py could not compile the core (its output is in the message)."""


@contextmanager
def compiled_tree() -> Iterator[Path]:
    """A directory holding ``streams/`` with the core compiled in place; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="esatrack-mypyc-") as build:
        shutil.copytree(ROOT / "streams", Path(build) / "streams",
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        for name in ("setup.py", "pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, build)
        print("compiling the core with mypyc (about a minute)...", file=sys.stderr)
        done = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=build,
                              env={**os.environ, "ESATRACK_MYPYC": "1"}, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise CompileError(f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        yield Path(build)
