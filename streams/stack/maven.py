"""Resolve a service's jars from Maven Central with ``mvn dependency:copy-dependencies``.

The POMs ship in ``streams/stack/java/``. Each is copied into the service's directory and
resolved into ``lib/``; a stamp (hash of the POM) makes the next ``up`` skip Maven entirely
until the POM changes.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from streams.errors import StackError
from streams.stack.service import Progress

_STAMP = ".resolved"
_MAVEN_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def packaged(name: str) -> bytes:
    """A file shipped in ``streams/stack/java/`` (POMs, the OpenSearch launcher source)."""
    return resources.files("streams.stack").joinpath("java", name).read_bytes()


def mvn_command(pom: Path, lib: Path, repo_local: Path | None) -> list[str]:
    """The ``mvn`` invocation that copies the POM's runtime dependencies into ``lib``."""
    command = [
        "mvn", "-B", "--no-transfer-progress", "-f", str(pom),
        f"{_MAVEN_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={lib}",
    ]
    if repo_local is not None:
        command.append(f"-Dmaven.repo.local={repo_local}")
    return command


# Maven's generic advice after every failure ("re-run with -e", "[Help 1] http://...").
_BOILERPLATE = re.compile(
    r"^\[ERROR\]\s*($|To see the full|Re-run Maven|For more information|\[Help \d+\])"
)


def error_tail(output: str, lines: int = 12, width: int = 700) -> str:
    """The last lines of Maven's output that explain a failure, each cut to ``width`` chars."""
    kept = [line for line in output.splitlines() if line.strip()]
    errors = [
        line for line in kept if line.startswith("[ERROR]") and not _BOILERPLATE.match(line)
    ] or kept
    return "\n".join(
        line if len(line) <= width else line[:width] + " ..." for line in errors[-lines:]
    )


def resolve(pom_name: str, home: Path, repo_local: Path | None, progress: Progress) -> Path:
    """Make ``home/lib`` hold the jars of the packaged POM ``pom_name``; return ``home/lib``."""
    pom_bytes = packaged(pom_name)
    digest = hashlib.sha256(pom_bytes).hexdigest()
    lib = home / "lib"
    stamp = lib / _STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return lib
    if shutil.which("mvn") is None:
        raise StackError(
            "Maven (mvn) not found on PATH: it resolves the Kafka and OpenSearch jars from Maven "
            "Central; install it (e.g. apt-get install maven) and run `esatrack stack up` again"
        )
    home.mkdir(parents=True, exist_ok=True)
    pom = home / "pom.xml"
    pom.write_bytes(pom_bytes)
    if lib.exists():  # a different version was resolved before: start clean
        shutil.rmtree(lib)
    progress(f"resolving jars with Maven into {lib} (first run downloads them)")
    result = subprocess.run(
        mvn_command(pom, lib, repo_local), capture_output=True, text=True, check=False, cwd=home
    )
    if result.returncode != 0:
        shutil.rmtree(lib, ignore_errors=True)
        raise StackError(
            f"Maven could not resolve {pom} (exit {result.returncode}):\n"
            f"{error_tail(result.stdout + result.stderr)}\n"
            "What to do: check that Maven Central (https://repo.maven.apache.org) or the mirror "
            "in ~/.m2/settings.xml is reachable (proxy settings go there too), then run "
            "`esatrack stack up` again; offline, the jars must already be in the local "
            "repository (ESATRACK_MAVEN_REPO_LOCAL)."
        )
    stamp.write_text(digest + "\n")
    return lib
