"""EdgeGateway: one gateway at Cloudflare's edge — its policy KV namespace and the immutable,
versioned policy entry, the Worker script with its bindings and Durable Object migrations, the
hostname (custom domain or route), and the Access application in front of it.

The policy entry's key carries the policy version and the script is bound to exactly that
version, so a Worker never enforces a mix of two versions (see DESIGN.md §3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import pulumi
import pulumi_cloudflare as cloudflare

from infra.build.artifacts import GatewayBuild
from infra.build.bindings import Binding, plan_bindings, policy_kv_key
from infra.build.migrations import pending_migrations
from infra.build.templates import ENTRY_MODULE
from infra.components.access_app import self_hosted_app
from infra.config.model import StackConfig


@dataclass(frozen=True)
class EdgeGatewayArgs:
    stack_name: str
    stack: StackConfig
    gateway: str
    build: GatewayBuild
    access_policy_ids: list[pulumi.Output[str]]
    """Reusable Access policies for the app, in precedence order."""
    identity_provider_id: pulumi.Output[str] | None
    service_token_ids: pulumi.Output[dict[str, str]]
    """Access client id → service-token name, for the Worker's ACCESS_CLIENTS binding."""
    secrets: Mapping[str, pulumi.Output[str]]
    """Pulumi secret config key → its (secret) value."""
    logpush: bool = False
    late_values: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Binding name → value for bindings whose value is another resource's output."""


class EdgeGateway(pulumi.ComponentResource):
    url: pulumi.Output[str]
    policy_version: pulumi.Output[str]
    access_aud: pulumi.Output[str] | None

    def __init__(self, name: str, args: EdgeGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airgate:edge:EdgeGateway", name, None, opts)
        stack = args.stack
        gateway = stack.gateways[args.gateway]
        protect = stack.protected
        child = pulumi.ResourceOptions(parent=self)
        guarded = pulumi.ResourceOptions(parent=self, protect=protect)
        script_name = args.build.script_name

        access_app = None
        self.access_aud = None
        if gateway.behind_access:
            access_app = self_hosted_app(
                f"{name}-access",
                account_id=stack.account_id,
                app_name=script_name,
                hostname=gateway.hostname,
                policy_ids=args.access_policy_ids,
                identity_provider_id=args.identity_provider_id,
                opts=child,
            )
            self.access_aud = access_app.aud

        namespace = cloudflare.WorkersKvNamespace(
            f"{name}-kv",
            account_id=stack.account_id,
            title=f"{script_name}-policy",
            opts=guarded,
        )
        policy = args.build.policy
        policy_entry = cloudflare.WorkersKv(
            f"{name}-policy",
            account_id=stack.account_id,
            namespace_id=namespace.id,
            key_name=policy_kv_key(policy.version),
            value=policy.canonical,
            opts=child,
        )

        planned = plan_bindings(stack, args.gateway, policy)
        script = cloudflare.WorkersScript(
            f"{name}-script",
            account_id=stack.account_id,
            script_name=script_name,
            content=args.build.bundle.decode("utf-8"),
            main_module=ENTRY_MODULE,
            compatibility_date=stack.compatibility_date,
            bindings=[
                _binding(b, namespace, access_app, args.service_token_ids, args.secrets, args.late_values)
                for b in planned
            ],
            migrations=cast(
                "cloudflare.WorkersScriptMigrationsArgsDict | None",
                pending_migrations(stack, args.gateway),
            ),
            observability={"enabled": True, "logs": {"enabled": True, "invocation_logs": True}},
            logpush=args.logpush,
            opts=pulumi.ResourceOptions(parent=self, protect=protect, depends_on=[policy_entry]),
        )

        if gateway.expose == "custom_domain":
            cloudflare.WorkersCustomDomain(
                f"{name}-domain",
                account_id=stack.account_id,
                zone_id=stack.zone_id,
                hostname=gateway.hostname,
                service=script.script_name,
                opts=child,
            )
        else:
            cloudflare.WorkersRoute(
                f"{name}-route",
                zone_id=stack.zone_id,
                pattern=f"{gateway.hostname}/*",
                script=script.script_name,
                opts=child,
            )

        self.url = pulumi.Output.from_input(f"https://{gateway.hostname}")
        self.policy_version = pulumi.Output.from_input(policy.version)
        self.kv_namespace_id = namespace.id
        """Where `airgate revoke` / `kill-switch` write this gateway's `control` document."""
        self.register_outputs(
            {
                "url": self.url,
                "policy_version": self.policy_version,
                "kv_namespace_id": self.kv_namespace_id,
                "script_name": script.script_name,
                "access_aud": self.access_aud,
            }
        )


def _binding(
    binding: Binding,
    namespace: cloudflare.WorkersKvNamespace,
    access_app: cloudflare.ZeroTrustAccessApplication | None,
    service_token_ids: pulumi.Output[dict[str, str]],
    secrets: Mapping[str, pulumi.Output[str]],
    late_values: Mapping[str, pulumi.Output[str]],
) -> cloudflare.WorkersScriptBindingArgsDict:
    if binding.late:
        value = late_values[binding.name]
        if binding.type == "secret_text":
            return {"name": binding.name, "type": "secret_text", "text": pulumi.Output.secret(value)}
        return {"name": binding.name, "type": "plain_text", "text": value}
    if binding.type == "kv_namespace":
        return {"name": binding.name, "type": "kv_namespace", "namespace_id": namespace.id}
    if binding.type == "durable_object_namespace":
        return {"name": binding.name, "type": "durable_object_namespace", "class_name": binding.class_name}
    if binding.type == "secret_text":
        assert binding.text is not None
        return {
            "name": binding.name,
            "type": "secret_text",
            "text": pulumi.Output.secret(secrets[binding.text]),
        }
    if binding.name == "IDENTITY" and access_app is not None:
        planned = binding.text or "{}"

        def with_audience(audience: str) -> str:
            return _with_audience(planned, audience)

        return {"name": binding.name, "type": "json", "json": access_app.aud.apply(with_audience)}
    if binding.name == "ACCESS_CLIENTS":
        return {"name": binding.name, "type": "json", "json": service_token_ids.apply(_canonical)}
    if binding.type == "json":
        return {"name": binding.name, "type": "json", "json": binding.text}
    return {"name": binding.name, "type": "plain_text", "text": binding.text}


def _canonical(value: Mapping[str, str]) -> str:
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))


def _with_audience(identity_json: str, audience: str) -> str:
    document = json.loads(identity_json)
    if document.get("mode") == "access":
        document["audience"] = [audience]
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
