"""`airgate verify` against the local environment: gateway URLs from its ports, and a client
credentials token from its OpenID provider for every machine identity."""

from __future__ import annotations

from infra.config.loader import LoadedStack
from infra.local.plan import LocalPlan, machine_clients
from infra.policy.compiler import compile_stack
from infra.verify.probes import plan_probes, uncoverable
from infra.verify.run import Report, run_probes


def verify_local(loaded: LoadedStack, plan: LocalPlan) -> Report:
    from infra.local.demo import client_token

    stack = loaded.config
    policies = compile_stack(stack)
    identities = machine_clients(stack)
    credentials = {
        client: {
            "authorization": f"Bearer {client_token(plan, client, plan.secrets[f'oidc-client-{client}'])}"
        }
        for client in identities
    }
    urls = {name: plan.gateway_url(name) for name in stack.gateways}
    return run_probes(
        plan_probes(stack, policies, identities),
        urls,
        credentials,
        {name: policy.version for name, policy in policies.items()},
        uncoverable(stack, policies),
    )
