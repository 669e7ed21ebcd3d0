"""The shipped index templates: loaded from schemas/opensearch/, fit for tracking, rendered with
the configured shard and replica counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.opensearch.naming import KINDS, alias, index_pattern
from streams.opensearch.templates import (
    DIGEST_KEY,
    SCHEMA_DIR,
    body_digest,
    desired_templates,
    load_component_templates,
    load_index_templates,
    load_ism_policies,
)
from streams.settings import load_settings


def merged_properties(kind: str) -> dict[str, Any]:
    """The field mappings an esa-<kind>-* index ends with (components, then the template)."""
    template = load_index_templates()[f"esa-{kind}"]
    components = load_component_templates()
    props: dict[str, Any] = {}
    for name in template["composed_of"]:
        props.update(components[name]["template"].get("mappings", {}).get("properties", {}))
    props.update(template["template"]["mappings"]["properties"])
    return props


def field(props: dict[str, Any], path: str) -> dict[str, Any]:
    """The mapping of a dotted path, descending into object/nested properties and sub-fields."""
    head, _, rest = path.partition(".")
    mapping = props[head]
    if not rest:
        return dict(mapping)
    if "properties" in mapping:
        return field(mapping["properties"], rest)
    return dict(mapping["fields"][rest])


@pytest.mark.parametrize("kind", KINDS)
def test_template_matches_naming(kind: str) -> None:
    """Each kind's template matches its daily indices and gives them the kind's alias."""
    template = load_index_templates()[f"esa-{kind}"]
    assert template["index_patterns"] == [index_pattern(kind)]
    assert list(template["template"]["aliases"]) == [alias(kind)]


@pytest.mark.parametrize(("kind", "path", "expected"), [
    ("messages", "sender", {"type": "keyword", "normalizer": "esa_lowercase"}),
    ("messages", "sender.wildcard", {"type": "wildcard", "normalizer": "esa_lowercase"}),
    ("messages", "recipients", {"type": "nested"}),
    ("messages", "recipients.address", {"type": "keyword", "normalizer": "esa_lowercase"}),
    ("messages", "recipients.address.wildcard", {"type": "wildcard"}),
    ("messages", "recipients.status", {"type": "keyword"}),
    ("messages", "recipients.updated_at", {"type": "date"}),
    ("messages", "client.ip", {"type": "ip"}),
    ("messages", "recipients.remote_ip", {"type": "ip"}),
    ("messages", "updated_at", {"type": "date"}),
    ("messages", "events", {"enabled": False}),
    ("messages", "started_at", {"type": "date"}),
    ("messages", "finished_at", {"type": "date"}),
    ("messages", "subject", {"type": "text"}),
    ("messages", "subject.keyword", {"type": "keyword"}),
    ("messages", "subject.lower", {"type": "keyword", "normalizer": "esa_lowercase"}),
    ("messages", "subject.wildcard", {"type": "wildcard"}),
    ("messages", "tags", {"type": "keyword"}),
    ("messages", "status", {"type": "keyword"}),
    ("messages", "quarantines", {"type": "nested"}),
    ("messages", "mid", {"type": "long"}),
    ("messages", "attachments.sha256", {"type": "keyword"}),
    ("connections", "client.ip", {"type": "ip"}),
    ("connections", "closed_at", {"type": "date"}),
    ("connections", "action", {"type": "keyword"}),
    ("raw", "received_at", {"type": "date"}),
    ("raw", "seq", {"type": "long"}),
    ("raw", "hash", {"type": "keyword"}),
    ("raw", "host", {"type": "keyword"}),
])
def test_tracking_field_mappings(kind: str, path: str, expected: dict[str, str]) -> None:
    """Fields searched by tracking have the types the tracking queries rely on."""
    mapping = field(merged_properties(kind), path)
    assert {key: mapping.get(key) for key in expected} == expected


def _normalizers_used(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("normalizer"), str):
            found.add(node["normalizer"])
        for value in node.values():
            found |= _normalizers_used(value)
    elif isinstance(node, list):
        for value in node:
            found |= _normalizers_used(value)
    return found


def test_every_normalizer_is_defined() -> None:
    """Every normalizer a mapping names is defined in the shared component's analysis."""
    components = load_component_templates()
    defined = set(components["esa-common"]["template"]["settings"]["index"]["analysis"]
                  ["normalizer"])
    used = _normalizers_used(load_index_templates()) | _normalizers_used(components)
    assert used
    assert used <= defined


def test_components_exist_for_every_template() -> None:
    """Index templates compose only component templates that are shipped."""
    components = set(load_component_templates())
    for template in load_index_templates().values():
        assert set(template["composed_of"]) <= components


@pytest.mark.parametrize(("shards", "replicas"), [(1, 0), (3, 2)])
def test_render_applies_shards_and_replicas(shards: int, replicas: int) -> None:
    """Rendered index templates carry the configured shard and replica counts."""
    settings = load_settings(opensearch_shards=shards, opensearch_replicas=replicas)
    indices = [t for t in desired_templates(settings) if t.kind == "index"]
    assert {t.name for t in indices} == {f"esa-{kind}" for kind in KINDS}
    for template in indices:
        index = template.body["template"]["settings"]["index"]
        assert (index["number_of_shards"], index["number_of_replicas"]) == (shards, replicas)


def test_digest_tracks_content_only() -> None:
    """The digest is the same for the same settings and changes when the shard count does."""
    one = {t.name: t.digest for t in desired_templates(load_settings(opensearch_shards=1))}
    again = {t.name: t.digest for t in desired_templates(load_settings(opensearch_shards=1))}
    three = {t.name: t.digest for t in desired_templates(load_settings(opensearch_shards=3))}
    assert one == again
    assert one["esa-messages"] != three["esa-messages"]
    assert one["esa-common"] == three["esa-common"]


def test_digest_ignores_itself() -> None:
    """A body's digest does not depend on a digest already stored in its _meta."""
    body = {"_meta": {"x": 1}, "template": {}}
    stamped = {"_meta": {"x": 1, DIGEST_KEY: "stale"}, "template": {}}
    assert body_digest(body) == body_digest(stamped)


def test_loader_reads_the_files_not_a_copy(tmp_path: Path) -> None:
    """Templates come from the schema directory given: an edited file changes what is loaded."""
    for path in SCHEMA_DIR.glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    edited = json.loads((tmp_path / "esa-raw.index-template.json").read_text())
    edited["priority"] = 321
    (tmp_path / "esa-raw.index-template.json").write_text(json.dumps(edited))
    assert load_index_templates(tmp_path)["esa-raw"]["priority"] == 321


def test_ism_policy_keeps_90_days_then_deletes() -> None:
    """The shipped ISM policy deletes esa-* indices after 90 days and attaches to all kinds."""
    policy = load_ism_policies()["esa-retention"]["policy"]
    states = {state["name"]: state for state in policy["states"]}
    hot = states[policy["default_state"]]
    (transition,) = hot["transitions"]
    assert transition["conditions"] == {"min_index_age": "90d"}
    assert states[transition["state_name"]]["actions"] == [{"delete": {}}]
    patterns = {p for t in policy["ism_template"] for p in t["index_patterns"]}
    assert patterns == {index_pattern(kind) for kind in KINDS}


RECORD_SCHEMAS = SCHEMA_DIR.parent


def _resolve(node: dict[str, Any], schema: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Follow a ``$ref`` to this schema's or a sibling schema's ``$defs``; return the node and
    the schema its own references are relative to."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node, schema
    file, _, pointer = ref.partition("#")
    root = schema if not file else json.loads((RECORD_SCHEMAS / file).read_text())
    target = root
    for part in pointer.strip("/").split("/"):
        target = target[part]
    return _resolve({**target, **{k: v for k, v in node.items() if k != "$ref"}}, root)


def schema_paths(node: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Every property path of a JSON Schema (array items flattened, as OpenSearch sees them)."""
    node, schema = _resolve(node, schema)
    if "items" in node:
        node, schema = _resolve(node["items"], schema)
    paths = []
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        paths.append(path)
        paths += schema_paths(child, schema, path + ".")
    return paths


def is_mapped(props: dict[str, Any], path: str) -> bool:
    """A path is mapped when every step exists, or an ancestor is an object kept unindexed."""
    head, _, rest = path.partition(".")
    mapping = props.get(head)
    if mapping is None:
        return False
    if mapping.get("enabled") is False or not rest:
        return True
    return is_mapped(mapping.get("properties", {}), rest)


@pytest.mark.parametrize(("kind", "schema_file"), [
    ("messages", "message.schema.json"), ("connections", "connection.schema.json")])
def test_every_record_property_has_a_mapping(kind: str, schema_file: str) -> None:
    """Each property of the record schemas is mapped (or deliberately kept unindexed)."""
    schema = json.loads((RECORD_SCHEMAS / schema_file).read_text())
    paths = schema_paths(schema, schema)
    assert {"client.ip", "events.text"} <= set(paths)  # the walk reaches refs and arrays
    props = merged_properties(kind)
    assert [path for path in paths if not is_mapped(props, path)] == []


@pytest.mark.parametrize(("kind", "path"), [
    ("messages", "mid"), ("messages", "recipients.address"), ("connections", "action")])
def test_coverage_check_notices_a_missing_field(kind: str, path: str) -> None:
    """The coverage check fails for a property whose mapping is removed."""
    props = merged_properties(kind)
    head, _, rest = path.partition(".")
    if rest:
        del props[head]["properties"][rest]
    else:
        del props[head]
    assert not is_mapped(props, path)
