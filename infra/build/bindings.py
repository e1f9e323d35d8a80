"""Decides a gateway Worker's bindings: the one contract between the Pulumi program and the Worker.

Values known from config are filled in here; values the provider computes (the Access app's `aud`,
service-token client ids, secrets) are passed in by the caller, so the same plan serves
`WorkersScript`, the wrangler config written by `airgate build` and the local environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.build.templates import durable_objects_for
from infra.config.model import StackConfig
from infra.policy.compiler import CompiledPolicy, canonical_json
from infra.stack_plan import Binding

POLICY_KV_BINDING = "POLICY"
UPSTREAM_SECRET_BINDING = "UPSTREAM_CREDENTIAL"  # noqa: S105 - a binding name


UPSTREAM_ACCESS_ID_BINDING = "UPSTREAM_ACCESS_CLIENT_ID"
UPSTREAM_ACCESS_SECRET_BINDING = "UPSTREAM_ACCESS_CLIENT_SECRET"  # noqa: S105 - a binding name
AIRFLOW_PASSWORD_BINDING = "AIRFLOW_PASSWORD"  # noqa: S105 - a binding name
# The HMAC key that authenticates the Worker's KV copy of the IdP's key set: made by the deploy
# (`EdgeGateway`), a Pulumi secret, known to nothing but the Worker (worker_templates/lib/keyset.js).
JWKS_KV_MAC_BINDING = "JWKS_KV_MAC_KEY"
# Cloudflare Access application tokens carry `typ: JWT`; the type list is Access's, not the stack's.
ACCESS_TOKEN_TYPES = ("jwt", "untyped")


def airflow_behind_tunnel(stack: StackConfig) -> bool:
    return stack.airflow is not None and stack.airflow.runtime == "kubernetes"


def policy_kv_key(version: str) -> str:
    return f"policy:{version}"


def identity_document(
    stack: StackConfig, gateway_name: str, access_audience: str | None = None
) -> dict[str, Any]:
    gateway = stack.gateways[gateway_name]
    identity = stack.identity
    common = {
        "algorithms": list(identity.algorithms),
        "leeway_seconds": identity.leeway_seconds,
        "jwks_refresh_cooldown_seconds": identity.jwks_refresh_cooldown_seconds,
        "roles_claim": identity.oidc.roles_claim,
    }
    if stack.gateway_auth(gateway) == "access":
        assert identity.access is not None  # the model guarantees it in access mode
        issuer = f"https://{identity.access.team_domain}"
        return {
            "mode": "access",
            "issuer": issuer,
            "jwks_url": f"{issuer}/cdn-cgi/access/certs",
            "audience": [access_audience or ""],
            "accepted_token_types": list(ACCESS_TOKEN_TYPES),
            **common,
        }
    return {
        "mode": "oidc",
        "issuer": identity.oidc.issuer,
        "jwks_url": None,
        "audience": [identity.oidc.audience],
        "accepted_token_types": list(identity.oidc.accepted_token_types),
        **common,
    }


def upstream_document(stack: StackConfig, gateway_name: str) -> dict[str, Any]:
    upstream = stack.gateways[gateway_name].upstream
    credential = upstream.credential
    return {
        "url": upstream.url,
        "timeout_ms": upstream.timeout_ms,
        "credential_header": credential.header if credential else None,
        "credential_scheme": credential.scheme if credential else None,
    }


def plan_bindings(
    stack: StackConfig,
    gateway_name: str,
    policy: CompiledPolicy,
    *,
    access_audience: str | None = None,
    service_token_ids: Mapping[str, str] | None = None,
) -> list[Binding]:
    """`service_token_ids` maps Access client id → service-token name (empty in oidc mode)."""
    gateway = stack.gateways[gateway_name]
    bindings = [
        Binding("GATEWAY", "plain_text", gateway_name),
        Binding("ENVIRONMENT", "plain_text", stack.environment),
        Binding("POLICY_VERSION", "plain_text", policy.version),
        Binding(POLICY_KV_BINDING, "kv_namespace"),
        Binding(
            "IDENTITY",
            "json",
            canonical_json(identity_document(stack, gateway_name, access_audience)),
            fill="access_audience" if gateway.behind_access else None,
        ),
        Binding(
            "ACCESS_CLIENTS",
            "json",
            canonical_json(dict(service_token_ids or {})),
            fill="service_token_ids",
        ),
        Binding("UPSTREAM", "json", canonical_json(upstream_document(stack, gateway_name))),
        Binding(JWKS_KV_MAC_BINDING, "secret_text", fill="random_secret"),
    ]
    if gateway.upstream.credential is not None:
        bindings.append(Binding(UPSTREAM_SECRET_BINDING, "secret_text", gateway.upstream.credential.secret))
    if gateway.kind == "dag_trigger" and airflow_behind_tunnel(stack):
        assert stack.airflow is not None
        # Airflow's API sits behind Access on the tunnel: the Worker presents its own service
        # token there, then logs in as its own Airflow API user.
        bindings += [
            Binding(UPSTREAM_ACCESS_ID_BINDING, "plain_text", late=True),
            Binding(UPSTREAM_ACCESS_SECRET_BINDING, "secret_text", late=True),
            Binding("AIRFLOW_USERNAME", "plain_text", stack.airflow.trigger_api_user),
            Binding(AIRFLOW_PASSWORD_BINDING, "secret_text", late=True),
        ]
    for name, value in sorted(gateway.vars.items()):
        bindings.append(Binding(f"VAR_{name.upper()}", "plain_text", value))
    for durable in durable_objects_for(stack, gateway_name):
        bindings.append(Binding(durable.binding, "durable_object_namespace", class_name=durable.class_name))
    return bindings
