"""Tracking search: criteria -> OpenSearch query (pure), streaming with PIT + search_after,
result formatting (table, JSON Lines, CSV) and the details view across message lineage."""
