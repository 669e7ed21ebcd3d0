"""Time `esatrack stack up` cold and warm, and measure the services' idle resident memory.

Runs a separate stack (own stack dir, own ports) so a stack already running on the default
ports is left alone.

- cold: an empty stack dir and an empty, throwaway Maven local repository, so Maven downloads
  everything (its dependency plugin included) from Maven Central, as on a fresh machine;
- warm: the same stack dir again after `down` (jars resolved, launcher compiled, storage
  formatted): the everyday case; then `up` once more while it runs (the idempotent no-op);
- idle RSS: of each JVM, after ``--idle`` seconds with no load, with the default heaps.

Usage: .venv/bin/python bench/stack_up.py [--idle 30] [--port-base 29000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streams.settings import load_settings
from streams.stack import control


def _esatrack(env: dict[str, str], *args: str, phases: list[str] | None = None) -> float:
    """Run ``esatrack stack <args>``; its progress lines, stamped, are appended to ``phases``."""
    begin = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "stack", *args],
        env=env, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if phases is not None:
                phases.append(f"  {time.perf_counter() - begin:6.1f} s  {line.rstrip()}")
    if proc.returncode != 0:
        raise SystemExit(f"esatrack stack {' '.join(args)} failed (exit {proc.returncode})")
    return time.perf_counter() - begin


def _du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=30.0, help="seconds idle before RSS")
    parser.add_argument("--port-base", type=int, default=29000)
    parser.add_argument("--keep", type=Path, help="work in this dir and keep it (default: temp)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="esatrack-bench-"))
    stack_dir, m2 = work / "stack", work / "m2"
    for path in (stack_dir, m2):
        shutil.rmtree(path, ignore_errors=True)
    base = args.port_base
    overrides = {
        "stack_dir": str(stack_dir), "maven_repo_local": str(m2),
        "kafka_port": str(base + 92), "kafka_controller_port": str(base + 93),
        "opensearch_http_port": str(base + 200), "opensearch_transport_port": str(base + 300),
    }
    env = {**os.environ, **{f"ESATRACK_{key.upper()}": value for key, value in overrides.items()}}
    settings = load_settings(**overrides)
    try:
        cold_phases: list[str] = []
        warm_phases: list[str] = []
        cold = _esatrack(env, "up", phases=cold_phases)
        time.sleep(args.idle)
        rss = {row.name: row.rss for row in control.status(control.services(settings))}
        down_cold = _esatrack(env, "down")
        warm = _esatrack(env, "up", phases=warm_phases)
        again = _esatrack(env, "up")
        down_warm = _esatrack(env, "down")
    finally:
        subprocess.run([sys.executable, "-m", "streams.cli", "stack", "down"], env=env,
                       check=False, capture_output=True)

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f} at the end (other work on the box slows start-up)")
    print(f"esatrack stack up, cold (empty stack dir and Maven repo): {cold:6.1f} s")
    print(f"esatrack stack up, warm (jars resolved, storage formatted): {warm:6.1f} s")
    print(f"esatrack stack up, already running:                      {again:6.1f} s")
    print(f"esatrack stack down:                                     {down_cold:6.1f} s "
          f"/ {down_warm:.1f} s")
    print(f"Maven downloads (local repository):                      {_du_mib(m2):6.0f} MiB")
    for name in control.SERVICE_NAMES:
        lib = _du_mib(stack_dir / name / "lib")
        heap = settings.kafka_heap if name == "kafka" else settings.opensearch_heap
        value = rss.get(name)
        rss_text = "?" if value is None else f"{value / 2**20:.0f} MiB"
        print(f"{name:<10} jars {lib:4.0f} MiB, heap {heap}, RSS after {args.idle:g} s idle: "
              f"{rss_text}")
    print("cold up, progress as it happened:", *cold_phases, sep="\n")
    print("warm up, progress as it happened:", *warm_phases, sep="\n")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
