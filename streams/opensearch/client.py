"""Build an opensearch-py client from the settings (never at import time)."""

from __future__ import annotations

from opensearchpy import OpenSearch

from streams.settings import Settings


def make_client(settings: Settings, *, timeout: float = 30.0) -> OpenSearch:
    """A client for ``settings.opensearch_url`` with the configured credentials and TLS checks."""
    auth = None
    if settings.opensearch_username:
        password = settings.opensearch_password
        auth = (settings.opensearch_username, password.get_secret_value() if password else "")
    return OpenSearch(
        hosts=[settings.opensearch_url],
        http_auth=auth,
        verify_certs=settings.opensearch_verify_certs,
        timeout=timeout,
        max_retries=0,  # retries are ours: the indexer backs off on 429/5xx itself
        retry_on_timeout=False,
    )
