"""Parser throughput on one core, against the floor of reading and splitting the same lines.

    .venv/bin/python bench/bench_parse.py [--messages 20000] [--repeat 5] [--seed 1] [--mypyc]

The lines come from bench/mix.py (syslog framed, ~27 lines per message, three appliances).
They are written to a temporary file once; then each round (a) reads the file and splits it
into lines (the floor: what any consumer pays before parsing) and (b) reads, splits and parses
every line with ``Parser.parse_line``. Both are timed with the process CPU clock (robust to
other load on the machine) and the wall clock; the best round of each is reported, with the
parse/floor ratio. With ``--mypyc`` the same run is repeated on the core compiled as wheels
ship it (setup.py with mypyc, in a temporary copy: bench/compiled.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.mix import START, generate  # noqa: E402 - the repo root is put on the path first

RECEIVED_AT = START + 3600.0


def _mypyc_run(argv: list[str]) -> int:
    """Bench the same run on the core compiled as wheels ship it (bench/compiled.py)."""
    from bench.compiled import CompileError, compiled_tree  # noqa: PLC0415 - only with --mypyc

    try:
        with compiled_tree() as build:
            rest = [arg for arg in argv if arg != "--mypyc"]
            return subprocess.run([sys.executable, __file__, "--streams-root", str(build),
                                   *rest], check=False).returncode
    except CompileError as exc:
        print(f"mypyc could not compile the core:\n{exc}", file=sys.stderr)
        return 1


def _best(rounds: int, work: Callable[[], int]) -> tuple[float, float, int]:
    """Best (CPU seconds, wall seconds) over ``rounds`` runs of ``work`` and its line count."""
    best_cpu = best_wall = float("inf")
    count = 0
    for _ in range(rounds):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        count = work()
        best_cpu = min(best_cpu, time.process_time() - cpu0)
        best_wall = min(best_wall, time.perf_counter() - wall0)
    return best_cpu, best_wall, count


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--messages", type=int, default=20_000)
    options.add_argument("--repeat", type=int, default=5)
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--mypyc", action="store_true",
                         help="also bench the core compiled with mypyc, as wheels ship it")
    options.add_argument("--streams-root", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.mypyc:
        print("== interpreted (CPython) ==")
        sys.stdout.flush()
        code = subprocess.run([sys.executable, __file__,
                               *[a for a in sys.argv[1:] if a != "--mypyc"]],
                              check=False).returncode
        print("== compiled with mypyc ==")
        sys.stdout.flush()
        return code or _mypyc_run(sys.argv[1:])
    if args.streams_root:
        sys.path.insert(0, args.streams_root)
    from streams.parse import Parser  # noqa: PLC0415 - imported after choosing its location
    from streams.parse import parser as parser_module  # noqa: PLC0415 - same

    lines = generate(args.messages, seed=args.seed)
    with tempfile.NamedTemporaryFile("wb", suffix=".log", delete=False) as handle:
        handle.write(b"\n".join(lines) + b"\n")
        path = handle.name
    try:
        parser = Parser(default_host="esa")

        def floor() -> int:
            count = 0
            with open(path, "rb") as stream:
                for _line in stream:
                    count += 1
            return count

        def parse() -> int:
            count = 0
            parse_line = parser.parse_line
            with open(path, "rb") as stream:
                for line in stream:
                    parse_line(line, RECEIVED_AT)
                    count += 1
            return count

        kinds = Counter(parser.parse_line(line, RECEIVED_AT).kind for line in lines)
        floor_cpu, floor_wall, n_lines = _best(args.repeat, floor)
        parse_cpu, parse_wall, _ = _best(args.repeat, parse)
    finally:
        os.unlink(path)

    unknown = kinds.get("unknown", 0)
    print(f"parser module: {Path(parser_module.__file__ or '?').name}")
    print(f"lines: {n_lines} ({args.messages} messages, {n_lines / args.messages:.1f} per "
          f"message, {len(kinds)} kinds, {unknown} unknown)")
    print(f"floor (read + split):  {n_lines / floor_cpu:>12,.0f} lines/s CPU   "
          f"{n_lines / floor_wall:>12,.0f} lines/s wall")
    print(f"parse (read + parse):  {n_lines / parse_cpu:>12,.0f} lines/s CPU   "
          f"{n_lines / parse_wall:>12,.0f} lines/s wall")
    print(f"per line: {parse_cpu / n_lines * 1e6:.2f} us parse vs {floor_cpu / n_lines * 1e6:.3f}"
          f" us floor; parse/floor time ratio {parse_cpu / floor_cpu:.1f}x")
    target = 400_000
    verdict = "meets" if n_lines / parse_cpu >= target else "is below"
    print(f"target {target:,} lines/s on one core: {verdict} it "
          f"({n_lines / parse_cpu / target:.0%} of target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
