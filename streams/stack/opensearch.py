"""OpenSearch 2.19 embedded in a plain JVM (``java/EmbeddedOpenSearch.java``), on 127.0.0.1.

Files under ``<stack_dir>/opensearch``: ``lib/`` (jars), ``classes/`` (the compiled launcher),
``config/opensearch.yml`` and ``config/log4j2.properties`` (rewritten on every start),
``data/``, ``logs/``, and empty ``modules/`` and ``plugins/`` (the module plugins come from
the classpath instead).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from streams.errors import StackError
from streams.settings import Settings
from streams.stack import checks, maven
from streams.stack.process import ProcessFiles
from streams.stack.service import Progress, Service

MAIN_CLASS = "EmbeddedOpenSearch"
POM = "opensearch-pom.xml"
SOURCE = "EmbeddedOpenSearch.java"

LOG4J2 = """\
# Written by `esatrack stack up`: OpenSearch's log4j 2 configuration (console -> logs/console.log).
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
"""


def node_settings(settings: Settings, home: Path) -> dict[str, str]:
    """The single-node settings: loopback only, our ports, no disk watermarks."""
    return {
        "cluster.name": "esatrack-local",
        "node.name": "esatrack-local",
        "path.data": str(home / "data"),
        "path.logs": str(home / "logs"),
        "network.host": "127.0.0.1",
        "http.port": str(settings.opensearch_http_port),
        "transport.port": str(settings.opensearch_transport_port),
        "discovery.type": "single-node",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.auto_create_index": "true",
    }


def render_yaml(values: dict[str, str]) -> str:
    """Flat ``opensearch.yml`` text; every value is a JSON string, which YAML reads as is."""
    lines = ["# Written by `esatrack stack up` from the ESATRACK_* settings; edits are lost."]
    lines += [f"{key}: {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def jvm_command(java: Path, home: Path, heap: str) -> list[str]:
    """``java`` running the embedded node, with the JVM options a distribution would set."""
    return [
        str(java), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC",
        "-Djava.awt.headless=true", "-Dfile.encoding=UTF-8", "-Djna.nosys=true",
        # As in the distribution's jvm.options: the date formats rely on the COMPAT locale data.
        "-Djava.locale.providers=SPI,COMPAT",
        # The node closes itself in our shutdown hook; log4j's own hook would silence that.
        "-Dlog4j.shutdownHookEnabled=false", "-Dlog4j2.disable.jmx=true",
        "-Dio.netty.noUnsafe=true", "-Dio.netty.noKeySetOptimization=true",
        "-Dio.netty.recycler.maxCapacityPerThread=0",
        f"-Djava.io.tmpdir={home / 'tmp'}",
        "-cp", f"{home / 'lib' / '*'}:{home / 'classes'}", MAIN_CLASS, str(home),
    ]


def _compile(home: Path, progress: Progress) -> None:
    source = maven.packaged(SOURCE)
    digest = hashlib.sha256(source).hexdigest()
    classes = home / "classes"
    stamp = classes / ".compiled"
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return
    javac = checks.require_javac()
    progress("compiling the embedded OpenSearch launcher")
    src_dir = home / "src"
    src_dir.mkdir(parents=True, exist_ok=True)
    (src_dir / SOURCE).write_bytes(source)
    classes.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(javac), "-d", str(classes), "-cp", str(home / "lib" / "*"), str(src_dir / SOURCE)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"opensearch: compiling {SOURCE} failed: {result.stderr.strip()[-1500:]}\n"
            f"The jars in {home / 'lib'} may be incomplete: delete that directory and run "
            "`esatrack stack up` again."
        )
    stamp.write_text(digest + "\n")


def service(settings: Settings) -> Service:
    """The OpenSearch service as the stack controller sees it."""
    home = settings.stack_dir.expanduser().resolve() / "opensearch"

    def prepare(java: Path, progress: Progress) -> list[str]:
        maven.resolve(POM, home, settings.maven_repo_local, progress)
        _compile(home, progress)
        for sub in ("config", "data", "logs", "tmp", "modules", "plugins"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        (home / "config" / "opensearch.yml").write_text(render_yaml(node_settings(settings, home)))
        (home / "config" / "log4j2.properties").write_text(LOG4J2)
        return jvm_command(java, home, settings.opensearch_heap)

    def probe() -> bool:
        return ready(f"http://127.0.0.1:{settings.opensearch_http_port}")

    return Service(
        name="opensearch",
        files=ProcessFiles(home=home, main_class=MAIN_CLASS),
        ports={"opensearch_http_port": settings.opensearch_http_port,
               "opensearch_transport_port": settings.opensearch_transport_port},
        prepare=prepare,
        probe=probe,
    )


def ready(url: str, timeout: float = 5.0) -> bool:
    """True if ``GET /_cluster/health?wait_for_status=yellow`` reports yellow or green."""
    query = f"{url.rstrip('/')}/_cluster/health?wait_for_status=yellow&timeout=2s"
    try:
        with urllib.request.urlopen(query, timeout=timeout) as response:
            body = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return body.get("status") in {"yellow", "green"}
