"""Read-only helpers over a plan document, shared by the rules and the diff.

Resource types are matched by their last token (`WorkersScript`, `Service`, ...) so the same rule
holds for every provider module and API version that spells them (e.g. `networking.k8s.io/v1` and
`v1beta1` Ingresses), and inputs are read in the engine's camelCase, which is also what CrossGuard sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from infra.plan.format import PlanDocument, ResourceEntry
from infra.plan.markers import MASK as SECRET_MASK
from infra.plan.markers import UNKNOWN

__all__ = ["SECRET_MASK", "UNKNOWN"]

MEMBER_KINDS: tuple[Literal["groups", "emails", "service_tokens", "oidc_clients"], ...] = (
    "groups",
    "emails",
    "service_tokens",
    "oidc_clients",
)


DEFAULT_ROUTES: tuple[dict[str, str], ...] = ({"name": "*", "pattern": "/**"},)
"""What a gateway without routes answers: everything."""


def kind_of(resource_type: str) -> str:
    """`cloudflare:index/workersScript:WorkersScript` -> `WorkersScript`."""
    return resource_type.rsplit(":", 1)[-1]


def module_of(resource_type: str) -> str:
    """`kubernetes:networking.k8s.io/v1:Ingress` -> `kubernetes:networking.k8s.io/v1`."""
    return resource_type.rsplit(":", 1)[0]


def host_of(uri: str) -> tuple[str, str]:
    """An Access destination, custom domain or route pattern -> (host, path prefix)."""
    text = uri.split("://", 1)[-1]
    host, _, path = text.partition("/")
    path = "/" + path if path else "/"
    return host.lower(), path.rstrip("*")


def host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return pattern == host


def path_within(path: str, prefix: str) -> bool:
    """Is every request under `path` also under the Access path `prefix`?"""
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def literal_prefix(pattern: str) -> str:
    """`/v1/batches/{id}/rows` -> `/v1/batches`: the part every matching request starts with."""
    kept: list[str] = []
    for segment in pattern.strip("/").split("/"):
        if not segment or segment in ("*", "**") or segment.startswith("{"):
            break
        kept.append(segment)
    return "/" + "/".join(kept)


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    parent: str | None
    custom: bool
    protect: bool
    gateway: str | None
    inputs: dict[str, Any]

    @property
    def kind(self) -> str:
        return kind_of(self.type)

    @classmethod
    def from_json(cls, raw: ResourceEntry) -> Resource:
        return cls(
            type=str(raw["type"]),
            name=str(raw["name"]),
            parent=raw.get("parent"),
            custom=bool(raw.get("custom", True)),
            protect=bool(raw.get("protect", False)),
            gateway=raw.get("gateway"),
            inputs=dict(raw.get("inputs") or {}),
        )


class PlanView:
    def __init__(self, document: PlanDocument) -> None:
        self.document = document
        self.stack: str = str(document.get("stack", "?"))
        self.environment: str = str(document.get("environment", "?"))
        self.protected: bool = bool(document.get("protected", self.environment == "prod"))
        self.resources = [Resource.from_json(raw) for raw in document.get("resources", [])]

    @property
    def is_prod(self) -> bool:
        """Prod, or an environment nobody could determine: the prod rules then apply (fail closed)."""
        return self.environment not in ("local", "dev", "staging")

    @property
    def zone(self) -> str | None:
        zone = self.document.get("zone")
        return zone if isinstance(zone, str) and known(zone) else None

    @property
    def review(self) -> dict[str, Any]:
        review = self.document.get("review")
        return dict(review) if isinstance(review, dict) else {}

    @cached_property
    def role_members(self) -> dict[str, dict[str, list[str]]]:
        """Role -> members, from the identities section or else the compiled policies."""
        found: dict[str, dict[str, list[str]]] = {}
        identities = self.document.get("identities")
        if isinstance(identities, dict) and isinstance(identities.get("roles"), dict):
            return {
                str(name): {kind: list(members[kind]) for kind in MEMBER_KINDS}
                for name, members in identities["roles"].items()
            }
        for policy in self.policies.values():
            for name, members in (policy.get("roles") or {}).items():
                if isinstance(members, dict):
                    found[str(name)] = dict(members)
        return found

    def is_machine_role(self, role: str) -> bool:
        """A role only machines hold: service tokens or OIDC clients, no people."""
        members = self.role_members.get(role) or {}
        people = list(members.get("groups") or []) + list(members.get("emails") or [])
        machines = list(members.get("service_tokens") or []) + list(members.get("oidc_clients") or [])
        return bool(machines) and not people

    def of_kind(self, *kinds: str) -> Iterator[Resource]:
        return (r for r in self.resources if r.kind in kinds)

    @cached_property
    def policies(self) -> dict[str, dict[str, Any]]:
        """Gateway -> compiled policy document."""
        found: dict[str, dict[str, Any]] = {}
        for name, policy in (self.document.get("policies") or {}).items():
            if isinstance(policy, dict) and isinstance(policy.get("document"), dict):
                found[str(name)] = policy["document"]
        return found

    @cached_property
    def gateway_hosts(self) -> dict[str, list[str]]:
        """Gateway -> the hostnames its Worker answers on (custom domains and route patterns)."""
        hosts: dict[str, list[str]] = {}
        for resource in self.of_kind("WorkersCustomDomain", "WorkersRoute", "WorkerRoute", "WorkerDomain"):
            raw = resource.inputs.get("hostname") or resource.inputs.get("pattern")
            if isinstance(raw, str) and resource.gateway:
                hosts.setdefault(resource.gateway, []).append(host_of(raw)[0])
        return hosts

    @cached_property
    def gateways(self) -> dict[str, GatewayFacts]:
        return gateway_facts(self)

    @cached_property
    def _access(self) -> tuple[list[tuple[Resource, str, str]], bool]:
        """One pass over the Access apps: what they guard, and whether all of it is known yet."""
        covered: list[tuple[Resource, str, str]] = []
        all_known = True
        for app in self.of_kind("ZeroTrustAccessApplication", "AccessApplication"):
            uris: list[str] = []
            domain = app.inputs.get("domain")
            if isinstance(domain, str):
                uris.append(domain)
            all_known &= domain is None or (isinstance(domain, str) and known(domain))
            for key in ("destinations", "selfHostedDomains"):
                given = app.inputs.get(key)
                # A preview may hand over a whole list as the unknown marker (a str): never iterate it.
                all_known &= given is None or (isinstance(given, list) and known(given))
                for destination in given if isinstance(given, list) else []:
                    if isinstance(destination, dict) and isinstance(destination.get("uri"), str):
                        uris.append(destination["uri"])
                    elif key == "selfHostedDomains" and isinstance(destination, str):
                        uris.append(destination)
            for uri in uris:
                host, path = host_of(uri)
                covered.append((app, host, path))
        return covered, all_known

    @property
    def access_destinations(self) -> list[tuple[Resource, str, str]]:
        """(Access app, host pattern, path prefix) for every hostname an Access app guards."""
        return self._access[0]

    @property
    def access_known(self) -> bool:
        """Every Access app's domain and destinations are known (not a preview's unknown or masked)."""
        return self._access[1]

    def access_decidable(self, hosts: Iterable[Any]) -> bool:
        """Can this plan tell whether Access covers `hosts`? Not while a host or destination is unknown."""
        return self.access_known and all(known(host) for host in hosts)

    def access_covers(self, host: str, path: str = "/") -> Resource | None:
        """The Access app guarding every request to `host` under `path`, if any."""
        for app, pattern, prefix in self.access_destinations:
            if host_matches(pattern, host) and path_within(path, prefix):
                return app
        return None

    def uncovered_routes(self, host: str, routes: Iterable[Mapping[str, Any]]) -> list[str]:
        """The routes (by name) that some request to `host` reaches without passing Access: none
        when an app covers the whole host, else each route whose literal prefix no app covers."""
        if self.access_covers(host) is not None:
            return []
        return [
            str(route.get("name"))
            for route in tuple(routes) or DEFAULT_ROUTES
            if self.access_covers(host, literal_prefix(str(route.get("pattern", "/")))) is None
        ]

    def bindings(self, script: Resource) -> list[dict[str, Any]]:
        raw = script.inputs.get("bindings")
        return [b for b in raw if isinstance(b, dict)] if isinstance(raw, list) else []

    def durable_object_classes(self, script: Resource) -> list[str]:
        return sorted(
            str(b.get("className"))
            for b in self.bindings(script)
            if b.get("type") == "durable_object_namespace" and b.get("className")
        )

    def is_airflow_related(self, resource: Resource) -> bool:
        """Named, labelled, namespaced or parented as Airflow."""
        text = json.dumps(
            [
                resource.name,
                resource.parent,
                (resource.inputs.get("metadata") or {}) if isinstance(resource.inputs, dict) else {},
                resource.inputs.get("chart"),
                resource.inputs.get("namespace"),
            ],
            default=str,
        ).lower()
        return "airflow" in text


def known(value: Any) -> bool:
    """False for what the engine cannot know yet (preview) and what the plan masks."""
    if isinstance(value, str):
        return value not in (UNKNOWN, SECRET_MASK)
    if isinstance(value, dict):
        return all(known(item) for item in value.values())
    if isinstance(value, list):
        return all(known(item) for item in value)
    return True


def url_host(url: str) -> str:
    """`https://a.example.com:8443/x` -> `a.example.com`."""
    rest = url.split("://", 1)[-1]
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0].lower()


def within(host: str, domain: str) -> bool:
    domain = domain.lower().lstrip(".")
    return host == domain or host.endswith("." + domain)


@dataclass(frozen=True)
class GatewayFacts:
    """What one gateway is, read from its resources and compiled policy (so the same facts exist in
    a plan document, an older one, and the engine's view the CrossGuard pack gets)."""

    name: str
    kind: str
    hosts: tuple[str, ...]
    upstream_url: str
    """The upstream URL, or UNKNOWN when the plan cannot show it."""
    upstream_credential: bool
    behind_access: bool | None
    """Every route on every host passes Cloudflare Access (`PlanView.uncovered_routes`: the
    access-in-prod rule's notion too); None when a host or destination is not known yet."""
    limits: dict[str, Any]
    default_rate_limit: dict[str, Any] | None
    routes: tuple[dict[str, Any], ...]

    @property
    def upstream_host(self) -> str:
        return url_host(self.upstream_url) if known(self.upstream_url) else UNKNOWN


def _upstream(view: PlanView, gateway: str) -> tuple[str, bool]:
    url, credential = UNKNOWN, False
    for script in view.of_kind("WorkersScript", "WorkerScript"):
        if script.gateway != gateway:
            continue
        for binding in view.bindings(script):
            if binding.get("name") == "UPSTREAM" and isinstance(binding.get("json"), str):
                try:
                    parsed = json.loads(binding["json"])
                except ValueError:
                    continue
                if isinstance(parsed, dict) and isinstance(parsed.get("url"), str):
                    url = parsed["url"]
            if binding.get("name") == "UPSTREAM_CREDENTIAL":
                credential = True
    return url, credential


def gateway_facts(view: PlanView) -> dict[str, GatewayFacts]:
    names = sorted(set(view.policies) | set(view.gateway_hosts))
    facts: dict[str, GatewayFacts] = {}
    for name in names:
        policy = view.policies.get(name) or {}
        hosts = tuple(view.gateway_hosts.get(name, []))
        url, credential = _upstream(view, name)
        routes = tuple(r for r in policy.get("routes") or [] if isinstance(r, dict))
        behind: bool | None
        if not hosts:
            behind = False
        elif not view.access_decidable(hosts):
            behind = None
        else:
            behind = not any(view.uncovered_routes(host, routes) for host in hosts)
        facts[name] = GatewayFacts(
            name=name,
            kind=str(policy.get("kind", "proxy")),
            hosts=hosts,
            upstream_url=url,
            upstream_credential=credential,
            behind_access=behind,
            limits=dict(policy.get("limits") or {}),
            default_rate_limit=policy.get("default_rate_limit"),
            routes=routes,
        )
    return facts
