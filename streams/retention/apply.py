"""The I/O side of retention: list daily indices, read holds, delete what the plan says."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Final

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from streams.errors import EsatrackError, ServiceUnavailable
from streams.retention.holds import HoldStore
from streams.retention.policy import Action, Decision, plan

HOLDS_INDEX: Final = "esatrack-holds"


def list_indices(client: OpenSearch, prefix: str) -> list[str]:
    """Names of the indices starting with ``prefix`` (open or closed)."""
    try:
        rows = client.cat.indices(index=f"{prefix}*", params={
            "format": "json", "h": "index", "expand_wildcards": "open,closed",
        })
    except NotFoundError:
        return []
    except OSConnectionError as exc:
        raise ServiceUnavailable(
            f"OpenSearch did not answer ({exc.__class__.__name__}); is it running? Check "
            "ESATRACK_OPENSEARCH_URL or start it with `esatrack stack up`"
        ) from None
    return sorted(str(row["index"]) for row in rows)


def plan_retention(
    client: OpenSearch, *, today: date, keep_days: int, prefix: str, holds_index: str,
    kinds: tuple[str, ...] = (),
) -> list[Decision]:
    """The retention plan for the cluster as it is now (nothing is changed)."""
    holds = HoldStore(client, holds_index).all()
    return plan(list_indices(client, prefix), today=today, keep_days=keep_days, holds=holds,
                prefix=prefix, kinds=kinds)


def execute(
    client: OpenSearch, decisions: list[Decision], *, dry_run: bool,
    report: Callable[[str], None],
) -> list[str]:
    """Delete the indices the plan marks, one by one by exact name, saying each; return the
    names deleted (none on a dry run)."""
    deleted: list[str] = []
    for decision in decisions:
        name = decision.index.name
        if decision.action is Action.KEEP:
            report(f"keep    {name}  ({decision.why})")
            continue
        if dry_run:
            report(f"would delete {name}  ({decision.why})")
            continue
        try:
            client.indices.delete(index=name, params={"expand_wildcards": "none"})
        except NotFoundError:
            report(f"gone    {name}  (already deleted)")
            continue
        except OSConnectionError as exc:
            raise ServiceUnavailable(
                f"OpenSearch stopped answering while deleting {name} ({exc.__class__.__name__});"
                f" {len(deleted)} indices were deleted; run retention again to finish"
            ) from None
        except TransportError as exc:
            raise EsatrackError(
                f"OpenSearch refused to delete {name}: {exc.error}; {len(deleted)} indices were "
                "deleted before it"
            ) from None
        deleted.append(name)
        report(f"deleted {name}  ({decision.why})")
    return deleted
