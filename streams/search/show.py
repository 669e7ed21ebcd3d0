"""``esatrack show``: the details view of one message, with its whole MID lineage."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final

from opensearchpy import OpenSearch

from streams.errors import EsatrackError
from streams.opensearch.naming import alias
from streams.search.details import related_mids, render_details
from streams.search.output import Record, to_datetime
from streams.search.query import HOST, MID, RECORD_ID, STARTED_AT, lineage_query

MAX_LINEAGE: Final = 50
"""At most this many related records are fetched (a runaway bounce loop stops here)."""


class MessageNotFound(EsatrackError):
    """No message record matches the id or host+MID asked for."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """A record id, or an appliance and MID."""
    parser.add_argument("id", nargs="?", help="record id (the `id` column of `esatrack search`)")
    parser.add_argument("--host", help="appliance (with --mid)")
    parser.add_argument("--mid", type=int, help="appliance MID (with --host)")
    parser.add_argument("--index", metavar="NAME", help="index or alias (default: esa-messages)")
    parser.add_argument("--json", action="store_true",
                        help="print the records (message first, then lineage) as JSON Lines")


def run(args: argparse.Namespace) -> int:
    """Fetch the message and its lineage, print the details view."""
    import orjson  # noqa: PLC0415 - only this output path needs it

    from streams.opensearch.client import make_client  # noqa: PLC0415 - no client at import
    from streams.settings import get_settings  # noqa: PLC0415 - settings read on use only

    if (args.id is None) == (args.host is None or args.mid is None):
        raise EsatrackError("give a record id, or --host and --mid (not both)")
    client = make_client(get_settings())
    index = args.index or alias("messages")
    root, lineage = fetch_message(client, index, record_id=args.id, host=args.host, mid=args.mid)
    if args.json:
        for record in [root, *lineage]:
            sys.stdout.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode() + "\n")
    else:
        sys.stdout.write(render_details(root, lineage))
    return 0


def fetch_message(
    client: OpenSearch, index: str, *, record_id: str | None = None,
    host: str | None = None, mid: int | None = None,
) -> tuple[Record, list[Record]]:
    """The message record asked for and the records of its lineage (same appliance, linked by
    ``parent_mid``/``child_mids``, followed transitively)."""
    from streams.search.stream import search_page  # noqa: PLC0415 - opensearch-py edge

    if record_id is not None:
        found = search_page(client, index, {"size": 1, "query": {"term": {RECORD_ID: record_id}}})
        what = f"id {record_id!r}"
    else:
        found = search_page(client, index, {
            "size": 1, "query": lineage_query(str(host), [int(mid or 0)]),
            "sort": [{STARTED_AT: {"order": "desc"}}],  # a reused MID: the latest message
        })
        what = f"host {host!r} MID {mid}"
    if not found:
        raise MessageNotFound(
            f"no message record with {what} in {index!r}; check the id with `esatrack search`"
        )
    root = found[0]
    return root, _lineage(client, index, root)


def _lineage(client: OpenSearch, index: str, root: Record) -> list[Record]:
    from streams.search.stream import search_page  # noqa: PLC0415 - opensearch-py edge

    host = root.get(HOST)
    if host is None or root.get(MID) is None:
        return []
    known: dict[int, Record] = {int(root[MID]): root}
    tried: set[int] = {int(root[MID])}
    frontier = related_mids(root) - tried
    while frontier and len(known) < MAX_LINEAGE:
        body: dict[str, Any] = {"size": 100, "query": lineage_query(str(host), sorted(frontier))}
        candidates = search_page(client, index, body)
        for mid in frontier:
            best = _closest([c for c in candidates if int(c[MID]) == mid], root)
            if best is not None:
                known[mid] = best
        tried |= frontier
        frontier = {m for r in known.values() for m in related_mids(r)} - tried
    return [record for mid, record in known.items() if mid != int(root[MID])]


def _closest(candidates: list[Record], root: Record) -> Record | None:
    """MIDs wrap around: of several records with one MID, the one nearest the root in time."""
    if not candidates:
        return None
    anchor = to_datetime(root.get(STARTED_AT))
    if anchor is None:
        return candidates[0]

    def distance(record: Record) -> float:
        moment = to_datetime(record.get(STARTED_AT))
        return float("inf") if moment is None else abs((moment - anchor).total_seconds())

    return min(candidates, key=distance)
