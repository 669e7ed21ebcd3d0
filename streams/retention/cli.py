"""``esatrack retention``: delete daily indices past the keep period, except legal holds."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from streams.opensearch.naming import KINDS, PREFIX
from streams.retention.apply import HOLDS_INDEX
from streams.retention.policy import LEGAL_MINIMUM_DAYS, Action, check_keep_days


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Keep period, dry run, and the explicit override of the legal minimum."""
    parser.add_argument("--keep-days", type=int, default=LEGAL_MINIMUM_DAYS, metavar="N",
                        help=f"keep this many days (default and legal minimum: "
                             f"{LEGAL_MINIMUM_DAYS})")
    parser.add_argument("--below-legal-minimum", action="store_true",
                        help=f"allow --keep-days below {LEGAL_MINIMUM_DAYS} (test systems only)")
    parser.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    parser.add_argument("--kind", action="append", default=[], choices=list(KINDS),
                        help="only this kind of index (repeat for several; default: all)")
    parser.add_argument("--quiet", action="store_true", help="do not list the indices kept")
    parser.add_argument("--prefix", default=PREFIX, help=argparse.SUPPRESS)
    parser.add_argument("--holds-index", default=HOLDS_INDEX, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Plan, print, delete (unless a dry run)."""
    from streams.opensearch.client import make_client  # noqa: PLC0415 - no client at import
    from streams.retention.apply import execute, plan_retention  # noqa: PLC0415 - I/O edge
    from streams.settings import get_settings  # noqa: PLC0415 - settings read on use only

    for warning in check_keep_days(args.keep_days, below_legal_minimum=args.below_legal_minimum):
        print(warning, file=sys.stderr)
    client = make_client(get_settings())
    today = datetime.now(UTC).date()
    decisions = plan_retention(client, today=today, keep_days=args.keep_days, prefix=args.prefix,
                               holds_index=args.holds_index, kinds=tuple(args.kind))

    def report(line: str) -> None:
        if not (args.quiet and line.startswith("keep")):
            print(line, flush=True)

    deleted = execute(client, decisions, dry_run=args.dry_run, report=report)
    expired = sum(1 for d in decisions if d.action is Action.DELETE)
    held = sum(1 for d in decisions if d.why.startswith("legal hold"))
    verb = "would delete" if args.dry_run else "deleted"
    count = expired if args.dry_run else len(deleted)
    print(f"{verb} {count} of {len(decisions)} daily indices older than {args.keep_days} days "
          f"(today {today}, UTC); {held} kept under legal hold", file=sys.stderr)
    return 0
