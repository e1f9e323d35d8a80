"""Read-only helpers over a plan document, shared by the rules and the diff.

Resource types are matched by their last token (`WorkersScript`, `Service`, ...) so the same rule
holds for every provider module and API version that spells them (e.g. `networking.k8s.io/v1` and
`v1beta1` Ingresses), and inputs are read in the engine's camelCase, which is also what CrossGuard sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from infra.plan.markers import MASK as SECRET_MASK
from infra.plan.markers import UNKNOWN

__all__ = ["SECRET_MASK", "UNKNOWN"]


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
    def from_json(cls, raw: dict[str, Any]) -> Resource:
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
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.stack: str = str(document.get("stack", "?"))
        self.environment: str = str(document.get("environment", "?"))
        self.protected: bool = bool(document.get("protected", self.environment == "prod"))
        self.resources = [Resource.from_json(raw) for raw in document.get("resources", [])]

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

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
    def access_destinations(self) -> list[tuple[Resource, str, str]]:
        """(Access app, host pattern, path prefix) for every hostname an Access app guards."""
        covered: list[tuple[Resource, str, str]] = []
        for app in self.of_kind("ZeroTrustAccessApplication", "AccessApplication"):
            uris: list[str] = []
            if isinstance(app.inputs.get("domain"), str):
                uris.append(app.inputs["domain"])
            for destination in app.inputs.get("destinations") or []:
                if isinstance(destination, dict) and isinstance(destination.get("uri"), str):
                    uris.append(destination["uri"])
            uris += [d for d in app.inputs.get("selfHostedDomains") or [] if isinstance(d, str)]
            for uri in uris:
                host, path = host_of(uri)
                covered.append((app, host, path))
        return covered

    def access_covers(self, host: str, path: str = "/") -> Resource | None:
        """The Access app guarding every request to `host` under `path`, if any."""
        for app, pattern, prefix in self.access_destinations:
            if host_matches(pattern, host) and path_within(path, prefix):
                return app
        return None

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
