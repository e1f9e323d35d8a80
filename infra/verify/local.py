"""`airgate verify` against the local environment: gateway URLs from its ports, and a client
credentials token from its OpenID provider for every machine identity."""

from __future__ import annotations

from infra.config.loader import LoadedStack
from infra.local.plan import LocalPlan, machine_clients
from infra.verify.run import Report, verify_edge


def verify_local(loaded: LoadedStack, plan: LocalPlan) -> Report:
    from infra.local.demo import client_token

    stack = loaded.config
    credentials = {
        client: {
            "authorization": f"Bearer {client_token(plan, client, plan.secrets[f'oidc-client-{client}'])}"
        }
        for client in machine_clients(stack)
    }
    return verify_edge(stack, {name: plan.gateway_url(name) for name in stack.gateways}, credentials)
