"""Decides the Cloudflare side of Airflow's private API: the tunnel's ingress rules, its DNS names,
the Access apps in front of both hostnames, and the connector token cloudflared runs with.

Both hostnames forward to the in-cluster API server; nothing else is published (the last rule answers
404). The UI hostname is for people (Access SSO); the API hostname is for the DAG-trigger gateway
only (a non-identity policy with its own service token).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from infra.airflow.kubernetes_plan import api_server_url
from infra.config.model import StackConfig
from infra.policy.access_plan import plan_access_policies


@dataclass(frozen=True)
class TunnelPlan:
    tunnel_name: str
    ui_hostname: str
    api_hostname: str
    ingress: tuple[dict[str, str], ...]
    ui_groups: tuple[str, ...]
    ui_emails: tuple[str, ...]
    account_id: str
    zone_id: str
    roles_claim: str
    """The IdP claim Access matches `ui_groups` against."""


def plan_tunnel(stack_name: str, stack: StackConfig) -> TunnelPlan:
    settings = stack.airflow
    assert settings is not None and settings.ui_hostname is not None and settings.api_hostname is not None
    upstream = api_server_url(settings)
    people = [
        plan
        for plan in plan_access_policies(stack)
        if plan.role in settings.ui_access_roles and plan.decision == "allow"
    ]
    return TunnelPlan(
        tunnel_name=f"airgate-{stack_name}-airflow",
        ui_hostname=settings.ui_hostname,
        api_hostname=settings.api_hostname,
        ingress=(
            {"hostname": settings.ui_hostname, "service": upstream},
            {"hostname": settings.api_hostname, "service": upstream},
            {"service": "http_status:404"},
        ),
        ui_groups=tuple(sorted({group for plan in people for group in plan.groups})),
        ui_emails=tuple(sorted({email for plan in people for email in plan.emails})),
        account_id=stack.account_id,
        zone_id=stack.zone_id,
        roles_claim=stack.identity.oidc.roles_claim,
    )


def tunnel_target(tunnel_id: str) -> str:
    """The CNAME target of a tunnel's public hostnames."""
    return f"{tunnel_id}.cfargotunnel.com"


def connector_token(account_id: str, tunnel_id: str, tunnel_secret_b64: str) -> str:
    """The token `cloudflared tunnel run` takes: base64 of {"a": account, "t": tunnel, "s": secret}.
    Computed here from the secret we generated, so no provider call (and no empty value under mocks)."""
    document = json.dumps({"a": account_id, "t": tunnel_id, "s": tunnel_secret_b64}, separators=(",", ":"))
    return base64.b64encode(document.encode()).decode()
