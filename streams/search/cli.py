"""``esatrack search``: message tracking from the command line, every match streamed."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack, closing
from datetime import UTC, datetime
from typing import TextIO

from streams.opensearch.naming import alias
from streams.search.criteria import (
    Criteria,
    Direction,
    Event,
    Op,
    SearchInputError,
    TextMatch,
    parse_ip,
    parse_text_match,
    parse_time,
)
from streams.search.output import Format, write_results
from streams.search.query import build_query, build_sort


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The tracking criteria of the SMA screen, plus output options."""
    ops = [o.value for o in Op if o is not Op.EMPTY]
    who = parser.add_argument_group("envelope")
    who.add_argument("--sender", metavar="ADDR", help="envelope sender")
    who.add_argument("--sender-match", choices=ops, default="is",
                     help="how --sender matches (default: is)")
    who.add_argument("--recipient", metavar="ADDR", help="envelope recipient")
    who.add_argument("--recipient-match", choices=ops, default="is",
                     help="how --recipient matches (default: is)")
    who.add_argument("--subject", metavar="TEXT", help="subject (case-insensitive)")
    who.add_argument("--subject-match", choices=[o.value for o in Op], default="is",
                     help="how --subject matches; 'empty' finds messages without a subject")
    when = parser.add_argument_group("time range (UTC unless a zone is given)")
    when.add_argument("--from", dest="start", metavar="TIME",
                      help="start: ISO 8601 (2024-03-17T10:00Z) or an age (30m, 24h, 7d)")
    when.add_argument("--to", dest="end", metavar="TIME", help="end (exclusive); default: now")
    adv = parser.add_argument_group("advanced")
    adv.add_argument("--sender-ip", metavar="IP", help="client IP or network (192.0.2.0/24)")
    adv.add_argument("--rejected-only", action="store_true",
                     help="search rejected connections (REJECT, TCPREFUSE) instead of messages")
    adv.add_argument("--message-id", metavar="ID", help="Message-ID header (with or without <>)")
    adv.add_argument("--mid", type=int, metavar="N", help="appliance MID")
    adv.add_argument("--host", action="append", default=[], metavar="HOST",
                     help="appliance (repeat for several)")
    adv.add_argument("--attachment", metavar="NAME|SHA256", help="attachment name or SHA-256")
    adv.add_argument("--direction", choices=[d.value for d in Direction])
    adv.add_argument("--event", action="append", default=[], choices=[e.value for e in Event],
                     help="message event; repeat for several (OR-ed)")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=[f.value for f in Format], default="table")
    out.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    out.add_argument("--newest-first", action="store_true", help="newest records first")
    out.add_argument("--index", metavar="NAME",
                     help="index or alias to search (default: esa-messages, or esa-connections "
                          "with --rejected-only)")
    out.add_argument("--page-size", type=int, default=1000, help=argparse.SUPPRESS)


def criteria_from_args(args: argparse.Namespace, *, now: datetime) -> Criteria:
    """The :class:`Criteria` of parsed command-line arguments."""
    subject: TextMatch | None = None
    if args.subject is not None or args.subject_match == Op.EMPTY.value:
        subject = parse_text_match(args.subject_match, args.subject)
    start = parse_time(args.start, now=now) if args.start else None
    end = parse_time(args.end, now=now) if args.end else None
    return Criteria(
        sender=parse_text_match(args.sender_match, args.sender) if args.sender else None,
        recipient=(parse_text_match(args.recipient_match, args.recipient)
                   if args.recipient else None),
        subject=subject,
        start=start,
        end=end,
        sender_ip=parse_ip(args.sender_ip) if args.sender_ip else None,
        rejected_only=args.rejected_only,
        message_id=args.message_id,
        mid=args.mid,
        hosts=tuple(args.host),
        attachment=args.attachment,
        direction=Direction(args.direction) if args.direction else None,
        events=tuple(Event(e) for e in args.event),
    )


def run(args: argparse.Namespace) -> int:
    """Stream all matches to stdout (or ``--output``); the count goes to stderr."""
    from streams.opensearch.client import make_client  # noqa: PLC0415 - no client at import
    from streams.search.stream import stream_hits  # noqa: PLC0415 - opensearch-py is slow to import
    from streams.settings import get_settings  # noqa: PLC0415 - settings read on use only

    criteria = criteria_from_args(args, now=datetime.now(UTC))
    if args.page_size < 1:
        raise SearchInputError("--page-size must be at least 1")
    index = args.index or alias("connections" if criteria.rejected_only else "messages")
    client = make_client(get_settings())
    progress = _show_progress if sys.stderr.isatty() else None
    with ExitStack() as stack:
        out: TextIO = sys.stdout
        if args.output:
            out = stack.enter_context(open(args.output, "w", encoding="utf-8", newline=""))
        hits = stack.enter_context(closing(stream_hits(
            client, index, build_query(criteria), build_sort(newest_first=args.newest_first),
            page_size=args.page_size, on_page=progress,
        )))
        count = write_results(hits, out, Format(args.format), connections=criteria.rejected_only)
    if progress is not None:
        print(file=sys.stderr)
    noun = "connection" if criteria.rejected_only else "message"
    print(f"{count} {noun} record{'s' if count != 1 else ''}", file=sys.stderr)
    return 0


def _show_progress(seen: int) -> None:
    print(f"\r{seen} records...", end="", file=sys.stderr, flush=True)
