"""``esatrack``: one entry point, one subcommand per concern.

Each subcommand lives in its own module that exposes ``add_arguments(parser)`` and
``run(args) -> int``; this table names them and they are imported only when chosen, so
``esatrack --help`` is fast and no client is opened at import time.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from streams import __version__
from streams.errors import EsatrackError

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("streams.demo.cli", "run the whole local chain on the sample logs, end to end"),
    "stack": ("streams.stack.cli", "local Kafka, OpenSearch and pipeline (up, down, status, logs)"),
    "parse": ("streams.parse.cli", "parse ESA log lines into JSON Lines events"),
    "correlate": ("streams.correlate.cli", "join log lines into message and connection records"),
    "search": ("streams.search.cli", "tracking search: every match, as table, JSONL or CSV"),
    "show": ("streams.search.show", "details of one message with its rewritten/split/bounce MIDs"),
    "retention": ("streams.retention.cli", "delete daily indices past the keep period (not held)"),
    "hold": ("streams.retention.hold_cli", "legal holds retention respects (add, list, remove)"),
    "opensearch": ("streams.opensearch.cli", "install index templates, aliases, ISM policy (init)"),
    "indexer": ("streams.indexer.cli", "index records and raw lines from Kafka into OpenSearch"),
    "verify": ("streams.archive.cli", "check one appliance's raw-archive hash chain for a day"),
    "receive": ("streams.ingest.receive_cli", "receive syslog (UDP, TCP, TLS) into Kafka"),
    "replay": ("streams.ingest.replay_cli", "publish appliance log files to Kafka (backfill)"),
    "worker": ("streams.worker.cli", "run a stream worker: raw lines on Kafka -> records"),
}


class CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> CommandModule:
    return cast(CommandModule, importlib.import_module(COMMANDS[name][0]))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esatrack",
        description="Message tracking and traffic-data pipeline for Cisco Secure Email gateways.",
    )
    parser.add_argument("--version", action="version", version=f"esatrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, (_module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only the chosen command's module is imported
            _load(name).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    try:
        return _load(args.command).run(args)
    except EsatrackError as exc:
        print(f"esatrack {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"esatrack {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `esatrack parse ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
