"""Index templates, aliases and the ISM policy: loaded from ``schemas/opensearch/``, installed
idempotently.

The JSON files are the only definition of the mappings; this module adds what depends on the
deployment (shard and replica counts) and a digest of the result in ``_meta``, so that
``esatrack opensearch init`` can tell "unchanged" from "updated" without comparing the server's
normalised form of a template field by field.

File naming in the schema directory:

* ``NAME.component.json``: a component template called NAME;
* ``NAME.index-template.json``: a composable index template called NAME;
* ``NAME.ism-policy.json``: an Index State Management policy (installed only on clusters that
  have the plugin).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError

from streams.errors import ConfigError
from streams.opensearch.naming import KINDS, alias, daily_index, index_pattern
from streams.settings import Settings

log = logging.getLogger(__name__)

SCHEMA_DIR: Final = Path(__file__).resolve().parents[2] / "schemas" / "opensearch"
DIGEST_KEY: Final = "esatrack_digest"
ISM_PLUGIN: Final = "opensearch-index-management"

TemplateKind = Literal["component", "index"]
Action = Literal["created", "updated", "unchanged", "skipped"]


@dataclass(frozen=True)
class Template:
    """One template as it is to be installed (settings applied, digest in ``_meta``)."""

    name: str
    kind: TemplateKind
    body: dict[str, Any]

    @property
    def digest(self) -> str:
        return str(self.body["_meta"][DIGEST_KEY])


@dataclass(frozen=True)
class Outcome:
    """What ``init`` did to one object: ``created``, ``updated``, ``unchanged`` or ``skipped``."""

    what: str
    name: str
    action: Action
    detail: str = ""


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc} (restore it from the repository)") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def _load_suffix(suffix: str, directory: Path | None) -> dict[str, dict[str, Any]]:
    base = directory or SCHEMA_DIR
    found = {path.name.removesuffix(suffix): _load_json(path)
             for path in sorted(base.glob(f"*{suffix}"))}
    if not found and suffix != ".ism-policy.json":
        raise ConfigError(f"no *{suffix} files in {base} (is the schemas/ directory installed?)")
    return found


def load_component_templates(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The component templates as written in the schema files, by name."""
    return _load_suffix(".component.json", directory)


def load_index_templates(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The composable index templates as written in the schema files, by name."""
    return _load_suffix(".index-template.json", directory)


def load_ism_policies(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The ISM policies shipped for clusters that have the Index State Management plugin."""
    return _load_suffix(".ism-policy.json", directory)


def body_digest(body: dict[str, Any]) -> str:
    """A stable digest of a template body, ignoring any digest already stored in it."""
    stripped = copy.deepcopy(body)
    stripped.get("_meta", {}).pop(DIGEST_KEY, None)
    return hashlib.sha256(orjson.dumps(stripped, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _with_digest(body: dict[str, Any]) -> dict[str, Any]:
    body.setdefault("_meta", {})[DIGEST_KEY] = body_digest(body)
    return body


def render_index_template(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """An index template with the configured shard and replica counts, refresh interval and
    its digest."""
    rendered = copy.deepcopy(body)
    index_settings = rendered.setdefault("template", {}).setdefault("settings", {})
    index_settings.setdefault("index", {}).update(
        number_of_shards=settings.opensearch_shards,
        number_of_replicas=settings.opensearch_replicas,
        refresh_interval=settings.opensearch_refresh_interval,
    )
    return _with_digest(rendered)


def desired_templates(settings: Settings, directory: Path | None = None) -> list[Template]:
    """Every template to install, component templates first (index templates refer to them)."""
    components = [Template(name, "component", _with_digest(copy.deepcopy(body)))
                  for name, body in load_component_templates(directory).items()]
    indices = [Template(name, "index", render_index_template(body, settings))
               for name, body in load_index_templates(directory).items()]
    return components + indices


def _installed_digest(client: OpenSearch, template: Template) -> str | None:
    """The digest stored in the installed template, ``""`` if it has none, None if absent."""
    try:
        if template.kind == "component":
            found = client.cluster.get_component_template(name=template.name)
            body = found["component_templates"][0]["component_template"]
        else:
            found = client.indices.get_index_template(name=template.name)
            body = found["index_templates"][0]["index_template"]
    except NotFoundError:
        return None
    return str(body.get("_meta", {}).get(DIGEST_KEY, ""))


def install_templates(client: OpenSearch, templates: Iterable[Template]) -> list[Outcome]:
    """Create or update each template whose installed digest differs; leave the others alone."""
    outcomes = []
    for template in templates:
        installed = _installed_digest(client, template)
        what = f"{template.kind} template"
        if installed == template.digest:
            outcomes.append(Outcome(what, template.name, "unchanged"))
            continue
        if template.kind == "component":
            client.cluster.put_component_template(name=template.name, body=template.body)
        else:
            client.indices.put_index_template(name=template.name, body=template.body)
        outcomes.append(Outcome(what, template.name, "created" if installed is None else "updated"))
    return outcomes


def ensure_aliases(client: OpenSearch, now: datetime | None = None) -> list[Outcome]:
    """Make each kind's alias resolve: create today's index when a kind has none yet (the
    template then attaches the alias), and add the alias to older indices that lack it."""
    moment = now or datetime.now(UTC)
    outcomes = []
    for kind in KINDS:
        name = alias(kind)
        existing = client.indices.get(
            index=index_pattern(kind),
            params={"allow_no_indices": "true", "expand_wildcards": "open"})
        if not existing:
            index = daily_index(kind, moment)
            try:
                client.indices.create(index=index)
            except RequestError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise
            outcomes.append(Outcome("alias", name, "created", f"with first index {index}"))
            continue
        missing = sorted(ix for ix, info in existing.items() if name not in info.get("aliases", {}))
        if missing:
            client.indices.put_alias(index=",".join(missing), name=name)
            outcomes.append(Outcome("alias", name, "updated", f"added to {len(missing)} indices"))
        else:
            outcomes.append(Outcome("alias", name, "unchanged", f"on {len(existing)} indices"))
    return outcomes


def has_ism(client: OpenSearch) -> bool:
    """Whether the cluster runs the Index State Management plugin."""
    plugins = client.cat.plugins(format="json")
    return any(p.get("component") == ISM_PLUGIN for p in plugins)


def install_ism_policies(client: OpenSearch, directory: Path | None = None,
                         wanted: bool = False) -> list[Outcome]:
    """Install the shipped ISM policies if ``wanted`` and the cluster has the plugin; report
    them skipped otherwise. Opt-in, because the policy deletes by age alone and knows nothing
    of legal holds (``esatrack retention`` does)."""
    policies = load_ism_policies(directory)
    if not policies:
        return []
    if not wanted:
        return [Outcome("ISM policy", name, "skipped",
                        "not requested (--ism); it deletes by age regardless of legal holds")
                for name in policies]
    if not has_ism(client):
        return [Outcome("ISM policy", name, "skipped",
                        "cluster has no Index State Management plugin; use `esatrack retention`")
                for name in policies]
    outcomes = []
    for name, raw in policies.items():
        body = copy.deepcopy(raw)
        # Policies have no _meta: the digest rides in the description, which ISM returns as is.
        body["policy"]["description"] += f" [{DIGEST_KEY} {body_digest(raw)}]"
        path = f"/_plugins/_ism/policies/{name}"
        try:
            current = client.transport.perform_request("GET", path)
        except NotFoundError:
            client.transport.perform_request("PUT", path, body=body)
            outcomes.append(Outcome("ISM policy", name, "created"))
            continue
        if current.get("policy", {}).get("description") == body["policy"]["description"]:
            outcomes.append(Outcome("ISM policy", name, "unchanged"))
            continue
        client.transport.perform_request(
            "PUT", path, body=body,
            params={"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]},
        )
        outcomes.append(Outcome("ISM policy", name, "updated"))
    return outcomes


def init_cluster(client: OpenSearch, settings: Settings, directory: Path | None = None,
                 ism: bool = False) -> list[Outcome]:
    """Everything ``esatrack opensearch init`` does, in order; safe to run any number of times.
    The ISM policy only with ``ism`` (see :func:`install_ism_policies`)."""
    outcomes = install_templates(client, desired_templates(settings, directory))
    outcomes += ensure_aliases(client)
    outcomes += install_ism_policies(client, directory, wanted=ism)
    for outcome in outcomes:
        log.info("opensearch init: %s %s %s %s", outcome.what, outcome.name, outcome.action,
                 outcome.detail)
    return outcomes
