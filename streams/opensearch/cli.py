"""``esatrack opensearch init``: install or update templates, aliases and (where the plugin
exists) the ISM retention policy. Idempotent; the indexer runs the same on start."""

from __future__ import annotations

import argparse
import sys

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from streams.errors import EsatrackError, ServiceUnavailable
from streams.opensearch.client import make_client
from streams.opensearch.templates import init_cluster
from streams.settings import Settings, get_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = sub.add_parser(
        "init", help="install or update index templates and aliases (and the ISM policy)",
        description="Install or update the esa-* index templates (from schemas/opensearch/) and "
                    "the per-kind aliases. Safe to repeat; the indexer runs it on start.")
    init.add_argument("--ism", action="store_true",
                      help="also install the ISM retention policy (clusters with Index State "
                           "Management only); it deletes indices after 90 days whatever legal "
                           "holds say, so prefer `esatrack retention` when you use holds")


def initialise(settings: Settings, ism: bool = False) -> int:
    """Run ``init`` against the configured cluster; return how many objects changed."""
    client = make_client(settings)
    try:
        outcomes = init_cluster(client, settings, ism=ism)
    except OSConnectionError as exc:
        raise ServiceUnavailable(
            f"OpenSearch at {settings.opensearch_url} did not answer ({exc.__class__.__name__}); "
            "start it (`esatrack stack up`) or set ESATRACK_OPENSEARCH_URL") from None
    except TransportError as exc:
        raise EsatrackError(
            f"OpenSearch at {settings.opensearch_url} refused the templates: "
            f"{exc.status_code} {exc.error}; check the cluster log and schemas/opensearch/"
        ) from None
    finally:
        client.close()
    for outcome in outcomes:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        print(f"{outcome.what:<20} {outcome.name:<20} {outcome.action}{detail}", file=sys.stderr)
    return sum(o.action in ("created", "updated") for o in outcomes)


def run(args: argparse.Namespace) -> int:
    if args.action == "init":
        initialise(get_settings(), ism=args.ism)
    return 0
