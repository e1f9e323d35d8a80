"""Decides the Cloudflare Access side of a stack: reusable policies per role, and which of them
guard each gateway's Access application, in which precedence.

A role's people (IdP groups, emails) and its machines (service tokens) get separate policies,
because Access needs decision `non_identity` for service tokens and `allow` for people.
"""

from __future__ import annotations

from infra.config.model import StackConfig
from infra.stack_plan import AccessPolicyPlan


def plan_access_policies(stack: StackConfig) -> list[AccessPolicyPlan]:
    plans: list[AccessPolicyPlan] = []
    for name in sorted(stack.roles):
        role = stack.roles[name]
        if role.groups or role.emails:
            plans.append(
                AccessPolicyPlan(
                    f"{name}-people",
                    name,
                    "allow",
                    groups=tuple(sorted(set(role.groups))),
                    emails=tuple(sorted({e.lower() for e in role.emails})),
                )
            )
        if role.service_tokens:
            plans.append(
                AccessPolicyPlan(
                    f"{name}-machines",
                    name,
                    "non_identity",
                    service_tokens=tuple(sorted(set(role.service_tokens))),
                )
            )
    return plans


def roles_on_gateway(stack: StackConfig, gateway_name: str) -> set[str]:
    gateway = stack.gateways[gateway_name]
    roles = {role for route in gateway.routes.values() for role in route.roles}
    roles |= {grant.role for grant in stack.dag_grants if grant.gateway == gateway_name}
    return roles


def gateway_policy_keys(stack: StackConfig, gateway_name: str) -> list[str]:
    """Policy keys for the gateway's Access app, in precedence order (1, 2, ...)."""
    wanted = roles_on_gateway(stack, gateway_name)
    return [plan.key for plan in plan_access_policies(stack) if plan.role in wanted]


def uses_access(stack: StackConfig) -> bool:
    """Without an Access app anywhere (the local stack), no Access resource is created at all."""
    return any(gateway.behind_access for gateway in stack.gateways.values())


def needs_identity_provider(stack: StackConfig) -> bool:
    return uses_access(stack) and any(p.decision == "allow" for p in plan_access_policies(stack))
