"""`plan_stack`: a validated stack in, the whole edge of that environment out, as one frozen value.

It decides, once: each gateway's Worker (bundle, bindings, policy entry, hostname, Access app, the
migration history), the Access identity (IdP, reusable policies, service tokens), the decision
Logpush job, and what is protected or retained where (the README's protection table). The Pulumi
program only wires this plan into components. Airflow's part (connections, tunnel, cluster, trigger
identity) is planned by `infra.airflow.plan.plan_airflow` and carried in the same `StackPlan`.
"""

from __future__ import annotations

import json

from infra.airflow.plan import plan_airflow
from infra.build.artifacts import build_gateway, script_prefix
from infra.build.bindings import plan_bindings, policy_kv_key
from infra.build.migrations import migration_history
from infra.build.templates import ENTRY_MODULE
from infra.config.loader import edge_secret_keys
from infra.config.model import StackConfig
from infra.plan_stack.stack import StackPlan
from infra.policy.access_plan import (
    gateway_policy_keys,
    needs_identity_provider,
    plan_access_policies,
    uses_access,
)
from infra.stack_plan import (
    UNPROTECTED,
    AccessAppPlan,
    AccessPlan,
    GatewayPlan,
    IdentityProviderPlan,
    LogpushPlan,
    Protection,
    ServiceTokenPlan,
)

NAMESPACE_PROTECTION = Protection(
    protect=True,
    retain_on_delete=True,
    why="the live Worker reads its policy (and the operators' control key) from this namespace; "
    "a replacement gets a new id and empties it",
)
SCRIPT_PROTECTION = Protection(
    protect=True,
    retain_on_delete=True,
    why="deleting a Worker deletes its Durable Objects' stored state (rate-limit windows, "
    "idempotency records), which no re-create brings back",
)
TOKEN_PROTECTION = Protection(
    protect=True,
    why="a replaced service token has a new client id and secret, which breaks every caller at once; "
    "rotate with rotation.version instead",
)


def plan_stack(stack_name: str, stack: StackConfig) -> StackPlan:
    protected = stack.protected
    gateways = {name: _plan_gateway(stack_name, stack, name, protected) for name in sorted(stack.gateways)}
    access = _plan_access(stack_name, stack, protected)
    logpush = _plan_logpush(stack_name, stack)
    return StackPlan(
        stack_name=stack_name,
        environment=stack.environment,
        account_id=stack.account_id,
        gateways=gateways,
        access=access,
        logpush=logpush,
        secret_keys=tuple(sorted(edge_secret_keys(stack))),
        airflow=plan_airflow(stack_name, stack),
    )


def _plan_gateway(stack_name: str, stack: StackConfig, name: str, protected: bool) -> GatewayPlan:
    gateway = stack.gateways[name]
    build = build_gateway(stack_name, stack, name)
    access_app = AccessAppPlan(tuple(gateway_policy_keys(stack, name))) if gateway.behind_access else None
    return GatewayPlan(
        account_id=stack.account_id,
        zone_id=stack.zone_id,
        script_name=build.script_name,
        hostname=gateway.hostname,
        auth=stack.gateway_auth(gateway),
        expose=gateway.expose,
        compatibility_date=stack.compatibility_date,
        main_module=ENTRY_MODULE,
        content=build.bundle.decode("utf-8"),
        kv_title=f"{build.script_name}-policy",
        policy_kv_key=policy_kv_key(build.policy.version),
        policy_value=build.policy.canonical,
        policy_version=build.policy.version,
        bindings=tuple(plan_bindings(stack, name, build.policy)),
        migrations=migration_history(stack),
        access_app=access_app,
        logpush=stack.logpush is not None,
        namespace_protection=NAMESPACE_PROTECTION if protected else UNPROTECTED,
        script_protection=SCRIPT_PROTECTION if protected else UNPROTECTED,
    )


def _plan_access(stack_name: str, stack: StackConfig, protected: bool) -> AccessPlan:
    """Without an Access app anywhere (the local stack) the plan holds no Access resource at all."""
    prefix = script_prefix(stack_name)
    oidc = stack.identity.oidc
    if not uses_access(stack):
        return AccessPlan(stack.account_id, prefix, oidc.roles_claim, None)
    idp = (
        IdentityProviderPlan(
            name=f"{prefix}-{oidc.identity_provider_name}",
            client_id=oidc.client_id,
            client_secret_key=oidc.client_secret.secret,
            issuer=oidc.issuer,
        )
        if needs_identity_provider(stack)
        else None
    )
    tokens = []
    for token_name in sorted(stack.service_tokens):
        token = stack.service_tokens[token_name]
        tokens.append(
            ServiceTokenPlan(
                key=token_name,
                name=f"{prefix}-{token_name}",
                duration=token.duration,
                client_secret_version=token.rotation.secret_version,
                previous_client_secret_expires_at=token.rotation.previous_expiry_text,
            )
        )
    return AccessPlan(
        account_id=stack.account_id,
        name_prefix=prefix,
        roles_claim=oidc.roles_claim,
        identity_provider=idp,
        tokens=tuple(tokens),
        policies=tuple(plan_access_policies(stack)),
        token_protection=TOKEN_PROTECTION if protected else UNPROTECTED,
    )


def _plan_logpush(stack_name: str, stack: StackConfig) -> LogpushPlan | None:
    if stack.logpush is None:
        return None
    script_filter = {
        "where": {"key": "ScriptName", "operator": "startsWith", "value": f"{script_prefix(stack_name)}-"}
    }
    challenge = stack.logpush.ownership_challenge
    return LogpushPlan(
        account_id=stack.account_id,
        job_name=f"{stack.logpush.name}-{stack_name}",
        destination_conf=stack.logpush.destination_conf,
        filter=json.dumps(script_filter, sort_keys=True, separators=(",", ":")),
        ownership_challenge_key=challenge.secret if challenge is not None else None,
    )
