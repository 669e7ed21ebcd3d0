"""``esatrack hold add|list|remove``: legal holds that retention must respect."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, date, datetime

from streams.opensearch.naming import KINDS
from streams.retention.apply import HOLDS_INDEX
from streams.retention.policy import Hold, check_hold, latest_hold_end


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands add, list, remove."""
    parser.add_argument("--holds-index", default=HOLDS_INDEX, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="hold data of a date range until an end date")
    add.add_argument("--reason", required=True, help="why (order number, case, official)")
    add.add_argument("--from", dest="start", required=True, type=_date, metavar="YYYY-MM-DD",
                     help="first day of data held")
    add.add_argument("--to", dest="end", required=True, type=_date, metavar="YYYY-MM-DD",
                     help="last day of data held")
    add.add_argument("--until", required=True, type=_date, metavar="YYYY-MM-DD",
                     help="the hold's end date (at most 2 years from today)")
    add.add_argument("--host", help="appliance the order concerns (the day's index is kept whole)")
    add.add_argument("--kind", choices=list(KINDS), help="only this kind of index")
    add.add_argument("--by", default=None, help="who orders it (default: the login name)")
    lst = sub.add_parser("list", help="list holds (active ones unless --all)")
    lst.add_argument("--all", action="store_true", help="include expired and removed holds")
    rem = sub.add_parser("remove", help="release a hold (kept on record as removed)")
    rem.add_argument("hold_id")
    rem.add_argument("--by", default=None, help="who releases it (default: the login name)")


def run(args: argparse.Namespace) -> int:
    """Add, list or remove holds in the holds index."""
    from streams.opensearch.client import make_client  # noqa: PLC0415 - no client at import
    from streams.retention.holds import HoldStore, new_hold_id  # noqa: PLC0415 - I/O edge
    from streams.settings import get_settings  # noqa: PLC0415 - settings read on use only

    store = HoldStore(make_client(get_settings()), args.holds_index)
    now = datetime.now(UTC)
    today = now.date()
    if args.action == "add":
        check_hold(args.start, args.end, args.until, today)
        hold = Hold(id=new_hold_id(), reason=args.reason, start=args.start, end=args.end,
                    until=args.until, created_by=args.by or getpass.getuser(), created_at=now,
                    host=args.host, kind=args.kind)
        store.add(hold)
        print(f"added {format_hold(hold, today)}")
        return 0
    if args.action == "remove":
        hold = store.remove(args.hold_id, by=args.by or getpass.getuser(), now=now)
        print(f"removed {format_hold(hold, today)}")
        return 0
    holds = [h for h in store.all() if args.all or h.active(today)]
    for hold in holds:
        print(format_hold(hold, today))
    if not holds:
        print("no active holds" if not args.all else "no holds")
    return 0


def format_hold(hold: Hold, today: date) -> str:
    """One line per hold: id, state, range, scope, end, who, reason."""
    state = ("removed" if hold.removed_at else "active" if hold.active(today) else "expired")
    scope = "".join(f" {k}={v}" for k, v in (("host", hold.host), ("kind", hold.kind)) if v)
    removed = (f" removed by {hold.removed_by} at {hold.removed_at:%Y-%m-%d %H:%M}Z"
               if hold.removed_at else "")
    return (f"{hold.id}  {state}  data {hold.start}..{hold.end}{scope}  until {hold.until}  "
            f"by {hold.created_by} at {hold.created_at:%Y-%m-%d %H:%M}Z{removed}  "
            f"reason: {hold.reason}")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; use YYYY-MM-DD (the latest --until today is "
            f"{latest_hold_end(datetime.now(UTC).date())})"
        ) from None

