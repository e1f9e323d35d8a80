"""Decides Airflow's gateway connections: one per (gateway, task role) pair the stack grants, and the
`AIRFLOW_CONN_<ID>` JSON each one becomes.

The connection a task uses decides the role it acts as, so every pair is its own connection:
`gw_<gateway>` for the default task role, `gw_<gateway>_as_<role>` for the others. The host is the
gateway's URL. The credential is the role's own machine identity:

- gateway behind Access: the role's service token, as `CF-Access-Client-Id` / `CF-Access-Client-Secret`
  in `extra` (the HTTP hook sends every non-reserved extra key as a header);
- gateway in `oidc` mode: conn type `airgate_gateway` (from the `airflow-gateway-auth` package), the
  OAuth2 client id/secret as login/password, and the token endpoint under `extra.oauth2`; the package's
  hook fetches, caches and refreshes client-credentials tokens and sends `Authorization: Bearer`.

Pure: the same builder fills the Kubernetes Secrets (with Pulumi secret values) and the local
environment's process environment (with plain values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from infra.config.airflow_model import (
    reachable_gateways,
    task_role_oidc_client,
    task_role_service_token,
)
from infra.config.model import StackConfig

GATEWAY_CONN_TYPE = "airgate_gateway"
"""Registered by `airflow-gateway-auth`; its hook adds the OAuth2 client-credentials auth."""
ACCESS_ID_HEADER = "CF-Access-Client-Id"
ACCESS_SECRET_HEADER = "CF-Access-Client-Secret"  # noqa: S105 - a header name, not a secret


@dataclass(frozen=True)
class ConnectionPlan:
    conn_id: str
    gateway: str
    role: str
    auth: Literal["access", "oidc"]
    behind_access: bool
    service_token: str | None
    """Name of the role's Access service token (gateways behind Access)."""
    oidc_client: str | None
    """The role's OAuth2 client id (gateways in oidc mode)."""

    @property
    def env_name(self) -> str:
        return connection_env_name(self.conn_id)


@dataclass(frozen=True)
class OAuth2Endpoint:
    token_url: str
    audience: str | None
    audience_parameter: Literal["resource", "audience", "none"]
    scope: str | None
    refresh_margin_seconds: int


@dataclass(frozen=True)
class ConnectionCredentials:
    """Plain values for one connection; in Pulumi they are resolved inside a secret Output."""

    gateway_url: str
    access_client_id: str | None = None
    access_client_secret: str | None = None
    oauth2_client_id: str | None = None
    oauth2_client_secret: str | None = None


def _ident(text: str) -> str:
    return text.replace("-", "_").lower()


def connection_id(stack: StackConfig, gateway: str, role: str) -> str:
    assert stack.airflow is not None
    if role == stack.airflow.main_task_role:
        return f"gw_{_ident(gateway)}"
    return f"gw_{_ident(gateway)}_as_{_ident(role)}"


def connection_env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def plan_connections(stack: StackConfig) -> list[ConnectionPlan]:
    """Every (gateway, task role) pair the stack grants, sorted by connection id."""
    settings = stack.airflow
    if settings is None:
        return []
    plans: list[ConnectionPlan] = []
    for role in sorted(settings.task_roles):
        for gateway_name in reachable_gateways(stack, role):
            gateway = stack.gateways[gateway_name]
            auth = stack.gateway_auth(gateway)
            plans.append(
                ConnectionPlan(
                    conn_id=connection_id(stack, gateway_name, role),
                    gateway=gateway_name,
                    role=role,
                    auth=auth,
                    behind_access=gateway.behind_access,
                    service_token=task_role_service_token(stack, role) if gateway.behind_access else None,
                    oidc_client=task_role_oidc_client(stack, role) if auth == "oidc" else None,
                )
            )
    plans.sort(key=lambda plan: plan.conn_id)
    ids = [plan.conn_id for plan in plans]
    # `ingest-x` and `ingest_x` would collide after the id mapping; refuse rather than overwrite.
    assert len(set(ids)) == len(ids), f"connection ids collide: {ids}"
    return plans


def oauth2_endpoint(stack: StackConfig, issuer: str | None = None) -> OAuth2Endpoint:
    """Where the task roles' OAuth2 clients get tokens. `issuer` overrides the stack's (the local
    environment runs its provider on a port chosen at start)."""
    assert stack.airflow is not None
    settings = stack.airflow.oauth2
    if issuer is not None:
        token_url = f"{issuer.rstrip('/')}/token"
    else:
        token_url = settings.token_url or f"{stack.identity.oidc.issuer}/v1/token"
    return OAuth2Endpoint(
        token_url=token_url,
        audience=stack.identity.oidc.audience,
        audience_parameter=settings.audience_parameter,
        scope=settings.scope,
        refresh_margin_seconds=settings.refresh_margin_seconds,
    )


def connection_document(
    plan: ConnectionPlan, credentials: ConnectionCredentials, oauth2: OAuth2Endpoint | None
) -> dict[str, object]:
    """The connection as Airflow's JSON form (`Connection.from_json`)."""
    extra: dict[str, object] = {}
    if plan.behind_access:
        if not credentials.access_client_id or not credentials.access_client_secret:
            raise ValueError(f"{plan.conn_id}: the gateway sits behind Access but no service token was given")
        extra[ACCESS_ID_HEADER] = credentials.access_client_id
        extra[ACCESS_SECRET_HEADER] = credentials.access_client_secret
    document: dict[str, object] = {"conn_type": "http", "host": credentials.gateway_url.rstrip("/")}
    if plan.auth == "oidc":
        if oauth2 is None or not credentials.oauth2_client_id or credentials.oauth2_client_secret is None:
            raise ValueError(f"{plan.conn_id}: the gateway is in oidc mode but no OAuth2 client was given")
        document["conn_type"] = GATEWAY_CONN_TYPE
        document["login"] = credentials.oauth2_client_id
        document["password"] = credentials.oauth2_client_secret
        oauth: dict[str, object] = {
            "token_url": oauth2.token_url,
            "audience_parameter": oauth2.audience_parameter,
            "refresh_margin_seconds": oauth2.refresh_margin_seconds,
        }
        if oauth2.audience is not None and oauth2.audience_parameter != "none":
            oauth["audience"] = oauth2.audience
        if oauth2.scope:
            oauth["scope"] = oauth2.scope
        extra["oauth2"] = oauth
    if extra:
        document["extra"] = extra
    return document


def connection_json(
    plan: ConnectionPlan, credentials: ConnectionCredentials, oauth2: OAuth2Endpoint | None
) -> str:
    return json.dumps(connection_document(plan, credentials, oauth2), sort_keys=True, separators=(",", ":"))


def connection_ids_by_gateway(plans: list[ConnectionPlan]) -> dict[str, list[str]]:
    """For the stack output: gateway → its connection ids."""
    found: dict[str, list[str]] = {}
    for plan in plans:
        found.setdefault(plan.gateway, []).append(plan.conn_id)
    return {gateway: sorted(ids) for gateway, ids in sorted(found.items())}


def plain_connections(
    stack: StackConfig,
    gateway_urls: dict[str, str],
    *,
    access_tokens: dict[str, tuple[str, str]] | None = None,
    oauth2_client_secrets: dict[str, str] | None = None,
    issuer: str | None = None,
) -> dict[str, str]:
    """AIRFLOW_CONN_<ID> → JSON with plain values, for an Airflow outside Pulumi (the local environment).

    `access_tokens`: service-token name → (client id, client secret); `oauth2_client_secrets`: OAuth2
    client id → secret; `issuer`: the live OpenID provider (its token endpoint is `<issuer>/token`)."""
    endpoint = oauth2_endpoint(stack, issuer)
    tokens = access_tokens or {}
    client_secrets = oauth2_client_secrets or {}
    found: dict[str, str] = {}
    for plan in plan_connections(stack):
        token = tokens.get(plan.service_token) if plan.service_token is not None else None
        credentials = ConnectionCredentials(
            gateway_url=gateway_urls[plan.gateway],
            access_client_id=token[0] if token else None,
            access_client_secret=token[1] if token else None,
            oauth2_client_id=plan.oidc_client,
            oauth2_client_secret=client_secrets.get(plan.oidc_client) if plan.oidc_client else None,
        )
        found[plan.env_name] = connection_json(plan, credentials, endpoint if plan.auth == "oidc" else None)
    return found
