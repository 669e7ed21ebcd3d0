"""Reading what the running pipeline says about itself: Prometheus counters and index counts."""

from __future__ import annotations

import urllib.error
import urllib.request

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError
from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int, timeout: float = 2.0) -> dict[str, float]:
    """Sum of each metric's samples on ``127.0.0.1:port/metrics`` (labels folded); {} if down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
            text = resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    return totals


def count(client: OpenSearch, alias: str) -> int:
    """Documents behind ``alias`` after a refresh (0 if it does not exist yet)."""
    try:
        client.indices.refresh(index=alias)
        return int(client.count(index=alias)["count"])
    except NotFoundError:
        return 0
