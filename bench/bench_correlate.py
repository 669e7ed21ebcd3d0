"""Correlation benchmark: parse + correlate speed on the realistic mix, and state per open message.

    .venv/bin/python bench/bench_correlate.py speed [--messages 20000] [--repeat 5] [--mypyc]
        [--wait-for-grace]
    .venv/bin/python bench/bench_correlate.py memory [--messages 1000000] [--method rss]

``speed`` generates the mix (bench/mix.py: ~27 lines per connection, three appliances, RFC 3164
framed) and times on one core (a) parsing alone, (b) correlating the parsed events, (c) both in
one pass, as ``esatrack correlate`` does (records built, not serialised). Each is timed with the
process CPU clock (least disturbed by other work on a shared machine) and the wall clock; the
best of ``--repeat`` rounds is printed. ``--mypyc`` repeats the run on the core compiled as wheels
ship it (setup.py with mypyc, in a temporary copy: bench/compiled.py). The engine is set up
as the workers run it (records emitted at their ``Message finished`` line); ``--wait-for-grace``
measures the engine that emits only after the grace period (``ESATRACK_EMIT_AT_FINISH=false``).

``memory`` feeds the engine until ``--messages`` messages are open: each message's lines up to
and including ``queued for delivery`` (connection, envelope, headers, verdicts, URLs,
attachments, policy), no delivery and no finish, as when the destination is unreachable. Log
time runs as in the mix (200 messages/s); at the end the watermark is moved past the retention
of closed connections, so the messages have been emitted in flight, their connections are gone
and each message holds its own copy of the client: the state a message keeps while it waits
for days. It prints the growth of the process's resident memory (``rss``, what the machine
pays, allocator slack included) or of the bytes tracemalloc traces as live (``tracemalloc``,
slower), divided by the number of open messages. Events are parsed and dropped in batches, and
the ids of retired records are taken after each batch as the worker does, so what stays is the
engine's state.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_path(streams_root: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    if streams_root:  # a compiled copy of the package comes first
        sys.path.insert(0, streams_root)


def _best(rounds: int, work: Callable[[], int]) -> tuple[float, float, int]:
    """Best (CPU seconds, wall seconds) over ``rounds`` runs of ``work``, and what it counted."""
    best_cpu = best_wall = float("inf")
    count = 0
    for _ in range(rounds):
        gc.collect()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        count = work()
        best_cpu = min(best_cpu, time.process_time() - cpu0)
        best_wall = min(best_wall, time.perf_counter() - wall0)
    return best_cpu, best_wall, count


def speed(messages: int, repeat: int, emit_at_finish: bool) -> None:
    from bench.mix import generate  # noqa: PLC0415 - after the path set-up
    from streams.correlate import Correlator  # noqa: PLC0415
    from streams.correlate import engine as engine_module  # noqa: PLC0415
    from streams.parse import Parser  # noqa: PLC0415

    lines = generate(messages, seed=1)
    n = len(lines)
    compiled = engine_module.__file__ is not None and engine_module.__file__.endswith(".so")
    mode = "records at the finish line" if emit_at_finish else "records after the grace"
    print(f"mix: {messages} connections, {n} lines "
          f"({'mypyc-compiled' if compiled else 'CPython'}; {mode})")
    events = list(Parser(default_host="esa", year=2024).parse_lines(lines))

    def parse_only() -> int:
        return sum(1 for _ in Parser(default_host="esa", year=2024).parse_lines(lines))

    def correlate_only() -> int:
        engine = Correlator(emit_at_finish=emit_at_finish)
        apply = engine.apply
        emitted = 0
        for event in events:
            emitted += len(apply(event))
        return emitted + len(engine.flush())

    def both() -> int:
        engine = Correlator(emit_at_finish=emit_at_finish)
        apply = engine.apply
        emitted = 0
        for event in Parser(default_host="esa", year=2024).parse_lines(lines):
            emitted += len(apply(event))
        return emitted + len(engine.flush())

    for label, work in (("parse only", parse_only), ("correlate only", correlate_only),
                        ("parse + correlate", both)):
        cpu, wall, count = _best(repeat, work)
        extra = f", {count} record emissions" if "correlate" in label else ""
        print(f"{label:18} CPU {n / cpu:>9,.0f} lines/s ({cpu / n * 1e6:.2f} us/line)   "
              f"wall {n / wall:>9,.0f} lines/s{extra}")


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def _renumber(body: str, ids: dict[str, tuple[int | None, int]]) -> str:
    """Each batch restarts the mix's counters: give its messages ids no other batch has."""
    words = body.split(" ")
    for i, word in enumerate(words[:-1]):
        old_new = ids.get(word.lstrip("("))
        if old_new is not None and words[i + 1].rstrip(")") == str(old_new[0]):
            words[i + 1] = words[i + 1].replace(str(old_new[0]), str(old_new[1]))
    return " ".join(words)


def memory(messages: int, method: str, batch: int = 5000) -> None:
    from bench.mix import START, plan, render  # noqa: PLC0415 - after the path set-up
    from streams import events as ev  # noqa: PLC0415
    from streams.correlate import Correlator  # noqa: PLC0415
    from streams.parse import Parser  # noqa: PLC0415

    open_kinds = {
        ev.CONN_NEW, ev.CONN_POLICY, ev.CONN_TLS, ev.CONN_AUTH, ev.CONN_CLOSE, ev.MSG_START,
        ev.MSG_FROM, ev.MSG_RCPT, ev.MSG_MESSAGE_ID, ev.MSG_SUBJECT, ev.MSG_READY,
        ev.MSG_POLICY, ev.MSG_VERDICT, ev.MSG_ATTACHMENT, ev.MSG_URL, ev.MSG_QUEUED,
    }
    engine = Correlator()
    if method == "tracemalloc":
        tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else _rss()
    started = time.monotonic()
    done = seed = 0
    while engine.open_counts()["messages"] < messages:  # ~10 % of the mix are rejections
        count = min(batch, max(messages - engine.open_counts()["messages"], 100))
        planned = plan(count, seed=seed, start=START + done / 200.0, hosts=("esa1.example.net",))
        for index, message in enumerate(planned):
            ids = {"MID": (message.mid, done + index + 1), "ICID": (message.icid, done + index + 1)}
            message.lines = [(t, seq, _renumber(body, ids)) for t, seq, body in message.lines]
        parser = Parser(default_host="esa", year=2024)
        for event in parser.parse_lines(render(planned)):
            if event.kind in open_kinds:
                engine.apply(event)
        engine.retired_ids()  # what the worker does after each batch: the list must not grow
        done += count
        seed += 1
        if done % 100_000 < count:
            print(f"  {done:>9} messages, {engine.open_counts()}, "
                  f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    watermark = engine.watermark("esa1.example.net") or START
    engine.advance(watermark + engine.retain + engine.grace + 2)
    engine.retired_ids()
    del planned, parser
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else _rss()
    counts = engine.open_counts()
    per = (after - before) / max(counts["messages"], 1)
    print(f"open messages {counts['messages']:,}, open connections {counts['connections']:,}, "
          f"message records emitted {engine.counts['messages']:,}")
    print(f"state per open message ({method}): {per:,.0f} bytes "
          f"(growth {(after - before) / 2**20:,.1f} MiB)")


def _mypyc_run(argv: list[str]) -> int:
    """Bench the same run on the core compiled as wheels ship it (bench/compiled.py)."""
    from bench.compiled import CompileError, compiled_tree  # noqa: PLC0415 - only with --mypyc

    try:
        with compiled_tree() as build:
            rest = [arg for arg in argv if arg != "--mypyc"]
            return subprocess.run([sys.executable, __file__, *rest, "--streams-root", str(build)],
                                  check=False).returncode
    except CompileError as exc:
        print(f"mypyc could not compile the core:\n{exc}", file=sys.stderr)
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    speed_parser = sub.add_parser("speed")
    speed_parser.add_argument("--messages", type=int, default=20_000)
    speed_parser.add_argument("--repeat", type=int, default=5)
    speed_parser.add_argument("--mypyc", action="store_true",
                              help="also bench a mypyc-compiled copy of parser and correlator")
    speed_parser.add_argument("--wait-for-grace", action="store_true",
                              help="engine without emission at the finish line")
    memory_parser = sub.add_parser("memory")
    memory_parser.add_argument("--messages", type=int, default=1_000_000)
    memory_parser.add_argument("--method", choices=("rss", "tracemalloc"), default="rss")
    for sub_parser in (speed_parser, memory_parser):
        sub_parser.add_argument("--streams-root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _setup_path(args.streams_root)
    if args.what == "speed":
        speed(args.messages, args.repeat, not args.wait_for_grace)
        if args.mypyc:
            sys.stdout.flush()
            return _mypyc_run(sys.argv[1:])
    else:
        memory(args.messages, args.method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
