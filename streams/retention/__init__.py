"""Retention of daily indices: which are past the keep period (pure), legal holds stored in
OpenSearch, and the deletion itself."""
