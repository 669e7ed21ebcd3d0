"""The OpenSearch edge: client construction, index naming, templates."""
