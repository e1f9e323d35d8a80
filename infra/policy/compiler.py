"""Compiles a stack into one policy document per gateway, its version hash, and the access matrix.

Pure and deterministic: declaration order, YAML formatting and dict ordering never change the bytes,
so the version hash changes exactly when what is enforced changes. A gateway's document holds only
the roles it mentions, so a Worker never learns about grants it does not enforce.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from infra.config.model import HTTP_METHODS, Gateway, StackConfig

POLICY_SCHEMA = 1


@dataclass(frozen=True)
class CompiledPolicy:
    gateway: str
    document: dict[str, Any]
    canonical: str
    version: str


@dataclass(frozen=True, order=True)
class MatrixRow:
    role: str
    gateway: str
    route: str
    path: str
    methods: tuple[str, ...]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _method_order(methods: tuple[str, ...]) -> list[str]:
    return sorted(set(methods), key=HTTP_METHODS.index)


def compile_gateway(stack: StackConfig, gateway_name: str) -> CompiledPolicy:
    gateway = stack.gateways[gateway_name]
    routes = sorted(gateway.routes.items(), key=lambda item: (item[1].pattern.precedence, item[0]))
    route_docs = [
        {
            "name": name,
            "pattern": route.path,
            "segments": list(route.pattern.segments),
            "methods": _method_order(route.methods),
            "roles": sorted(set(route.roles)),
            "rate_limit": _rate(route.rate_limit or gateway.default_rate_limit),
            "forward_headers": sorted(route.forward_headers),
            "forward_query": sorted(route.forward_query),
        }
        for name, route in routes
    ]
    dags = _dag_grants(stack, gateway_name)
    mentioned = {role for route in route_docs for role in route["roles"]}
    mentioned |= {role for grants in dags.values() for role in grants}
    roles = {
        name: {
            "groups": sorted(set(role.groups)),
            "emails": sorted({email.lower() for email in role.emails}),
            "service_tokens": sorted(set(role.service_tokens)),
            "oidc_clients": sorted(set(role.oidc_clients)),
        }
        for name, role in stack.roles.items()
        if name in mentioned
    }
    document: dict[str, Any] = {
        "schema": POLICY_SCHEMA,
        "environment": stack.environment,
        "gateway": gateway_name,
        "kind": gateway.kind,
        "roles": roles,
        "routes": route_docs,
        "dags": dags,
        "limits": _limits(gateway),
        "headers": {
            "forward": sorted(gateway.forward_headers),
            "client_address": gateway.forward_client_address,
            "set_cookie": gateway.response.set_cookie,
            "absolute_location": gateway.response.absolute_location,
        },
    }
    canonical = canonical_json(document)
    version = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return CompiledPolicy(gateway_name, document, canonical, version)


def compile_stack(stack: StackConfig) -> dict[str, CompiledPolicy]:
    return {name: compile_gateway(stack, name) for name in sorted(stack.gateways)}


def access_matrix(stack: StackConfig) -> list[MatrixRow]:
    rows = [
        MatrixRow(role, gw_name, route_name, route.path, tuple(_method_order(route.methods)))
        for gw_name, gateway in stack.gateways.items()
        for route_name, route in gateway.routes.items()
        for role in set(route.roles)
    ]
    return sorted(rows)


def _dag_grants(stack: StackConfig, gateway_name: str) -> dict[str, dict[str, Any]]:
    dags: dict[str, dict[str, Any]] = {}
    for grant in stack.dag_grants:
        if grant.gateway != gateway_name:
            continue
        for dag_id in grant.dags:
            dags.setdefault(dag_id, {})[grant.role] = {
                "conf_schema": grant.conf_schema,
                "read_others_runs": grant.read_others_runs,
            }
    return {dag: dict(sorted(roles.items())) for dag, roles in sorted(dags.items())}


def _rate(limit: Any) -> dict[str, int]:
    return {"requests": limit.requests, "per_seconds": limit.per_seconds}


def _limits(gateway: Gateway) -> dict[str, Any]:
    return {
        "max_body_bytes": gateway.limits.max_body_bytes,
        "max_header_bytes": gateway.limits.max_header_bytes,
        "max_token_bytes": gateway.limits.max_token_bytes,
        "durable_objects_fail_open": gateway.durable_objects_fail_open,
        "upstream_timeout_ms": gateway.upstream.timeout_ms,
        "auth_failures": _rate(gateway.auth_failure_rate_limit),
    }
