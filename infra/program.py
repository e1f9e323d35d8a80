"""The airgate Pulumi program: one validated stack in, the whole environment's resources out.

It plans once (`plan_stack`), then wires: each component gets only its part of the plan and the
outputs of the components it depends on. Used unchanged by `pulumi up -s <env>` (through
`__main__.py`) and by `airgate plan` (under mocks).

Two reads happen at deploy time, for the Durable Object migrations (docs/design/migrations.md): the
migration tag each live script carries, from the account's script list (as wrangler does), and
this stack's own last outputs (a stack reference to itself), which say what the last deploy gave
each script.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare

from infra.airflow.program import trigger_identity_from_plan, wire_airflow
from infra.build.bindings import (
    AIRFLOW_PASSWORD_BINDING,
    UPSTREAM_ACCESS_ID_BINDING,
    UPSTREAM_ACCESS_SECRET_BINDING,
)
from infra.components.access import AccessIdentity, AccessIdentityArgs
from infra.components.edge import EdgeGateway, EdgeGatewayArgs
from infra.components.endpoints import EdgeOutputs, GatewayEndpoint, MachineCredential
from infra.components.logpush import DecisionLogpush, DecisionLogpushArgs
from infra.config.loader import LoadedStack
from infra.plan_stack.planner import plan_stack

EDGE_SCRIPTS_OUTPUT = "edge_scripts"


def define(loaded: LoadedStack) -> EdgeOutputs:
    stack = loaded.config
    plan = plan_stack(loaded.name, stack)
    config = pulumi.Config("airgate")
    secrets = {key: config.require_secret(key) for key in plan.secret_keys}

    idp = plan.access.identity_provider
    identity = AccessIdentity(
        "identity",
        AccessIdentityArgs(plan.access, secrets[idp.client_secret_key] if idp is not None else None),
    )
    token_names_by_client_id = pulumi.Output.all(
        *[token.client_id for token in identity.tokens.values()]
    ).apply(lambda ids: dict(sorted(zip(ids, identity.tokens, strict=True))))

    airflow = plan.airflow
    trigger = (
        trigger_identity_from_plan(airflow) if airflow is not None and airflow.trigger is not None else None
    )
    trigger_values: dict[str, pulumi.Output[str]] = {}
    if trigger is not None:
        trigger_values = {
            UPSTREAM_ACCESS_ID_BINDING: trigger.access_client_id,
            UPSTREAM_ACCESS_SECRET_BINDING: trigger.access_client_secret,
            AIRFLOW_PASSWORD_BINDING: trigger.api_password,
        }

    live_tags = live_migration_tags(plan.account_id)
    previous = previous_edge_scripts()
    endpoints: dict[str, GatewayEndpoint] = {}
    versions: dict[str, pulumi.Output[str]] = {}
    namespaces: dict[str, pulumi.Output[str]] = {}
    audiences: dict[str, pulumi.Output[str]] = {}
    uploads: dict[str, pulumi.Output[dict[str, Any]]] = {}
    for gateway_name, gateway_plan in plan.gateways.items():
        script_name = gateway_plan.script_name
        edge = EdgeGateway(
            gateway_name,
            EdgeGatewayArgs(
                plan=gateway_plan,
                access_policy_ids=[identity.policy_ids[key] for key in gateway_plan.access_app.policy_keys]
                if gateway_plan.access_app is not None
                else [],
                identity_provider_id=identity.identity_provider_id,
                service_token_ids=token_names_by_client_id,
                secrets=secrets,
                live_migration_tag=live_tags.apply(_entry(script_name)),
                previous_upload=previous.apply(_entry(gateway_name)),
                # Only bindings the plan marks late read these (`Binding.late`).
                late_values=trigger_values,
            ),
        )
        endpoints[gateway_name] = GatewayEndpoint(
            gateway_name, gateway_plan.hostname, edge.url, gateway_plan.auth
        )
        versions[gateway_name] = edge.policy_version
        uploads[gateway_name] = edge.upload
        namespaces[gateway_name] = edge.kv_namespace_id
        if edge.access_aud is not None:
            audiences[gateway_name] = edge.access_aud

    if plan.logpush is not None:
        challenge_key = plan.logpush.ownership_challenge_key
        DecisionLogpush(
            "decisions",
            DecisionLogpushArgs(plan.logpush, secrets[challenge_key] if challenge_key is not None else None),
        )

    pulumi.export("gateway_urls", {name: e.url for name, e in endpoints.items()})
    pulumi.export("policy_versions", versions)
    pulumi.export("kv_namespace_ids", namespaces)
    pulumi.export("access_aud", audiences)
    pulumi.export("service_token_client_ids", {name: t.client_id for name, t in identity.tokens.items()})
    pulumi.export(
        "service_token_secrets",
        pulumi.Output.secret({name: t.client_secret for name, t in identity.tokens.items()}),
    )
    pulumi.export(EDGE_SCRIPTS_OUTPUT, pulumi.Output.secret(uploads))
    pulumi.export("environment", json.dumps({"stack": plan.stack_name, "kind": plan.environment}))
    edge_outputs = EdgeOutputs(
        endpoints=endpoints,
        service_tokens={
            name: MachineCredential(
                name, "access_service_token", token.client_id, pulumi.Output.secret(token.client_secret)
            )
            for name, token in identity.tokens.items()
        },
    )
    if airflow is not None:
        wire_airflow(
            airflow,
            stack,
            edge_outputs,
            trigger_identity=trigger,
            identity_provider_id=identity.identity_provider_id,
        )
    return edge_outputs


def _entry(key: str) -> Callable[[Mapping[str, Any]], Any]:
    def get(mapping: Mapping[str, Any]) -> Any:
        return mapping.get(key)

    return get


def live_migration_tags(account_id: str) -> pulumi.Output[dict[str, str]]:
    """Script name → the Durable Object migration tag it carries, from the account's script list:
    the list carries each script's `migration_tag`, and it is where wrangler reads it before it
    decides which migrations to send (cloudflare/wrangler-legacy#1992). Read on every run, preview
    included, so a deploy that failed half-way leaves nothing stale behind."""
    scripts = cloudflare.get_workers_scripts_output(account_id=account_id)

    def by_name(results: Any) -> dict[str, str]:
        return {r.id: r.migration_tag for r in results or [] if getattr(r, "migration_tag", None)}

    return scripts.results.apply(by_name)


def previous_edge_scripts() -> pulumi.Output[dict[str, Any]]:
    """This stack's last `edge_scripts` output (`{}` on its first deploy), through a stack reference
    to itself. Only decides whether a script that is up to date keeps its last `migrations` input
    (then an unchanged stack shows no changes); the tags always come from the live scripts."""
    reference = pulumi.StackReference(
        f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    )

    def edge_scripts(outputs: Any) -> dict[str, Any]:
        value = (outputs or {}).get(EDGE_SCRIPTS_OUTPUT)
        return value if isinstance(value, dict) else {}

    return reference.outputs.apply(edge_scripts)
