"""Stream every hit of a query with ``search_after`` and a point in time (PIT): no result cap,
a consistent view while indexing goes on, and the PIT is closed at the end, even on error or
when the consumer stops early (close the generator, e.g. with :func:`contextlib.closing`)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import suppress
from functools import partial
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from streams.errors import EsatrackError, ServiceUnavailable
from streams.search.query import Query


class SearchFailed(EsatrackError):
    """OpenSearch refused the search; the message carries its reason and what to check."""


def stream_hits(
    client: OpenSearch,
    index: str,
    query: Query,
    sort: list[Query],
    *,
    page_size: int = 1000,
    keep_alive: str = "2m",
    on_page: Callable[[int], None] | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Yield the ``_source`` of every hit of ``query`` on ``index`` in ``sort`` order.

    The first page is a plain search: most tracking searches (a MID, a Message-ID) fit in it,
    and then no PIT is needed. A full first page continues from its last sort key in a PIT, so
    later pages see one consistent view; every record comes out at most once, in order.
    ``on_page(total_so_far)`` is called after each page (for progress on stderr)."""
    body: dict[str, Any] = {"size": page_size, "query": query, "sort": sort,
                            "track_total_hits": False}
    hits = _call(partial(client.search, index=index, body=body), index)["hits"]["hits"]
    for hit in hits:
        yield hit["_source"]
    seen = len(hits)
    if on_page is not None and hits:
        on_page(seen)
    if len(hits) < page_size:
        return
    search_after: list[Any] = hits[-1]["sort"]
    pit_id = _open_pit(client, index, keep_alive)
    try:
        while True:
            body = {
                "size": page_size,
                "query": query,
                "sort": sort,
                "pit": {"id": pit_id, "keep_alive": keep_alive},
                "track_total_hits": False,
                "search_after": search_after,
            }
            response = _call(partial(client.search, body=body), index)
            pit_id = response.get("pit_id") or pit_id
            hits = response["hits"]["hits"]
            for hit in hits:
                yield hit["_source"]
            seen += len(hits)
            if on_page is not None and hits:
                on_page(seen)
            if len(hits) < page_size:
                return
            search_after = hits[-1]["sort"]
    finally:
        _close_pit(client, pit_id)


def search_page(client: OpenSearch, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One plain search (small, bounded results: lookups by id or MID); the hits' sources."""
    response = _call(lambda: client.search(index=index, body=body), index)
    return [hit["_source"] for hit in response["hits"]["hits"]]


def _open_pit(client: OpenSearch, index: str, keep_alive: str) -> str:
    response = _call(
        lambda: client.create_pit(index=index, params={"keep_alive": keep_alive}), index
    )
    return str(response["pit_id"])


def _close_pit(client: OpenSearch, pit_id: str) -> None:
    # The PIT expires by itself after keep_alive; failing to close it early must not hide the
    # error (or the result) that got us here.
    with suppress(TransportError, OSConnectionError):
        client.delete_pit(body={"pit_id": [pit_id]})


def _call(request: Callable[[], Any], index: str) -> Any:
    try:
        return request()
    except NotFoundError:
        raise SearchFailed(
            f"no index or alias {index!r} in OpenSearch: create the templates with "
            "`esatrack opensearch init` and index some records (`esatrack indexer`)"
        ) from None
    except OSConnectionError as exc:
        raise ServiceUnavailable(
            f"OpenSearch did not answer ({exc.__class__.__name__}); is it running? "
            "Check ESATRACK_OPENSEARCH_URL or start it with `esatrack stack up`"
        ) from None
    except TransportError as exc:
        raise SearchFailed(f"OpenSearch refused the search on {index!r}: {exc.error} "
                           f"({_reason(exc)})") from None


def _reason(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        if causes and isinstance(causes[0], dict):
            return str(causes[0].get("reason") or error.get("reason") or exc.status_code)
        return str(error.get("reason") or exc.status_code)
    return str(exc.status_code)
