"""Decides the probes of `airgate verify` from the stack alone: for each machine identity, each
gateway, route and HTTP method, a request path and the decision the compiled policy expects; one
unauthenticated probe per route; and the rows no probe can cover (roles only people hold)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.config.model import StackConfig
from infra.config.sections import HTTP_METHODS
from infra.policy.can_i import Asker, roles_at
from infra.policy.compiler import CompiledPolicy
from infra.policy.decision import decide

SAMPLE_SEGMENT = "airgate-verify"


@dataclass(frozen=True)
class Probe:
    identity: str | None
    """A machine identity (OIDC client id or service-token name); None: no credential at all."""
    gateway: str
    route: str
    method: str
    path: str
    expected: str
    """allow, no_route, ..., or `unauthenticated` (401 with WWW-Authenticate)."""
    expected_route: str | None
    behind_access: bool = False
    """An unauthenticated call may be refused by Cloudflare Access before it reaches the Worker."""


@dataclass(frozen=True)
class Uncoverable:
    role: str
    gateway: str
    route: str
    why: str


def machine_identities(stack: StackConfig) -> list[str]:
    """Every identity verify can hold a credential for: OIDC clients at oidc gateways, service
    tokens at access gateways."""
    modes = {stack.gateway_auth(g) for g in stack.gateways.values()}
    found: set[str] = set()
    for role in stack.roles.values():
        if "oidc" in modes:
            found.update(role.oidc_clients)
        if "access" in modes:
            found.update(role.service_tokens)
    return sorted(found)


def sample_path(segments: list[str], dag_id: str | None) -> str:
    parts = []
    for segment in segments:
        if segment == "{dag_id}" and dag_id is not None:
            parts.append(dag_id)
        elif segment.startswith("{") or segment in ("*", "**"):
            parts.append(SAMPLE_SEGMENT)
        else:
            parts.append(segment)
    return "/" + "/".join(parts)


def _dag_for(policy: Mapping[str, object], roles: tuple[str, ...]) -> str | None:
    dags = policy.get("dags")
    if not isinstance(dags, dict) or not dags:
        return None
    granted = [dag for dag, grant in sorted(dags.items()) if set(roles) & set(grant)]
    return str(granted[0]) if granted else str(sorted(dags)[0])


def plan_probes(
    stack: StackConfig, policies: Mapping[str, CompiledPolicy], identities: list[str]
) -> list[Probe]:
    probes: list[Probe] = []
    for name, compiled in sorted(policies.items()):
        document = compiled.document
        for route in document["routes"]:
            path = sample_path(route["segments"], _dag_for(document, ()))
            access = stack.gateways[name].behind_access
            probes.append(
                Probe(None, name, route["name"], route["methods"][0], path, "unauthenticated", None, access)
            )
        for identity in identities:
            roles = roles_at(stack, compiled, Asker("client", identity))
            for route in document["routes"]:
                path = sample_path(route["segments"], _dag_for(document, roles))
                for method in HTTP_METHODS:
                    expected = decide(document, method, path, frozenset(roles))
                    probes.append(
                        Probe(
                            identity,
                            name,
                            route["name"],
                            method,
                            path,
                            expected.decision,
                            expected.route["name"] if expected.route else None,
                        )
                    )
    return probes


def uncoverable(stack: StackConfig, policies: Mapping[str, CompiledPolicy]) -> list[Uncoverable]:
    """(role, gateway, route) grants only people hold: verify has no credential for a person."""
    rows = []
    for name, compiled in sorted(policies.items()):
        for route in compiled.document["routes"]:
            for role in route["roles"]:
                member = stack.roles[role]
                if not (member.oidc_clients or member.service_tokens):
                    rows.append(
                        Uncoverable(role, name, route["name"], "held by people only (groups, emails)")
                    )
    return rows
