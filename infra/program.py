"""The airgate Pulumi program: one validated stack in, the whole environment's resources out.

Used unchanged by `pulumi up -s <env>` (through `__main__.py`) and by `airgate plan` (under mocks).
"""

from __future__ import annotations

import json

import pulumi

from infra.airflow.program import create_trigger_identity, deploy_airflow
from infra.build.artifacts import build_gateway
from infra.build.bindings import (
    AIRFLOW_PASSWORD_BINDING,
    UPSTREAM_ACCESS_ID_BINDING,
    UPSTREAM_ACCESS_SECRET_BINDING,
    airflow_behind_tunnel,
)
from infra.components.access import AccessIdentity, AccessIdentityArgs
from infra.components.edge import EdgeGateway, EdgeGatewayArgs
from infra.components.endpoints import EdgeOutputs, GatewayEndpoint, MachineCredential
from infra.components.logpush import DecisionLogpush, DecisionLogpushArgs
from infra.config.loader import LoadedStack, referenced_secrets
from infra.policy.access_plan import gateway_policy_keys


def define(loaded: LoadedStack) -> EdgeOutputs:
    stack = loaded.config
    config = pulumi.Config("airgate")
    secrets = {key: config.require_secret(key) for key in sorted(referenced_secrets(stack))}

    identity = AccessIdentity(
        "identity",
        AccessIdentityArgs(loaded.name, stack, secrets[stack.identity.oidc.client_secret.secret]),
    )
    token_names_by_client_id = pulumi.Output.all(
        *[token.client_id for token in identity.tokens.values()]
    ).apply(lambda ids: dict(sorted(zip(ids, identity.tokens, strict=True))))

    trigger = create_trigger_identity(loaded) if airflow_behind_tunnel(stack) else None
    trigger_values: dict[str, pulumi.Output[str]] = {}
    if trigger is not None:
        trigger_values = {
            UPSTREAM_ACCESS_ID_BINDING: trigger.access_client_id,
            UPSTREAM_ACCESS_SECRET_BINDING: trigger.access_client_secret,
            AIRFLOW_PASSWORD_BINDING: trigger.api_password,
        }

    endpoints: dict[str, GatewayEndpoint] = {}
    versions: dict[str, pulumi.Output[str]] = {}
    namespaces: dict[str, pulumi.Output[str]] = {}
    audiences: dict[str, pulumi.Output[str]] = {}
    for gateway_name in sorted(stack.gateways):
        gateway = stack.gateways[gateway_name]
        edge = EdgeGateway(
            gateway_name,
            EdgeGatewayArgs(
                stack_name=loaded.name,
                stack=stack,
                gateway=gateway_name,
                build=build_gateway(loaded.name, stack, gateway_name),
                access_policy_ids=[
                    identity.policy_ids[key] for key in gateway_policy_keys(stack, gateway_name)
                ]
                if gateway.behind_access
                else [],
                identity_provider_id=identity.identity_provider_id,
                service_token_ids=token_names_by_client_id,
                secrets=secrets,
                logpush=stack.logpush is not None,
                late_values=trigger_values if gateway.kind == "dag_trigger" else {},
            ),
        )
        endpoints[gateway_name] = GatewayEndpoint(
            gateway_name, gateway.hostname, edge.url, stack.gateway_auth(gateway)
        )
        versions[gateway_name] = edge.policy_version
        namespaces[gateway_name] = edge.kv_namespace_id
        if edge.access_aud is not None:
            audiences[gateway_name] = edge.access_aud

    if stack.logpush is not None:
        DecisionLogpush("decisions", DecisionLogpushArgs(loaded.name, stack))

    pulumi.export("gateway_urls", {name: e.url for name, e in endpoints.items()})
    pulumi.export("policy_versions", versions)
    pulumi.export("kv_namespace_ids", namespaces)
    pulumi.export("access_aud", audiences)
    pulumi.export("service_token_client_ids", {name: t.client_id for name, t in identity.tokens.items()})
    pulumi.export(
        "service_token_secrets",
        pulumi.Output.secret({name: t.client_secret for name, t in identity.tokens.items()}),
    )
    pulumi.export("environment", json.dumps({"stack": loaded.name, "kind": stack.environment}))
    edge_outputs = EdgeOutputs(
        endpoints=endpoints,
        service_tokens={
            name: MachineCredential(
                name, "access_service_token", token.client_id, pulumi.Output.secret(token.client_secret)
            )
            for name, token in identity.tokens.items()
        },
    )
    if stack.airflow is not None:
        deploy_airflow(
            loaded,
            edge_outputs,
            trigger_identity=trigger,
            identity_provider_id=identity.identity_provider_id,
        )
    return edge_outputs
