"""EdgeGateway: one gateway at Cloudflare's edge, from its `GatewayPlan` — the policy KV namespace
and the immutable, versioned policy entry, the Worker script with its bindings and the Durable
Object migrations it still needs, the hostname (custom domain or route), the Access application
in front of it, and the Worker's key-set MAC secret (random bytes that authenticate its KV copy of
the IdP's key set; a Pulumi secret known only to the deploy and the Worker).

The policy entry's key carries the policy version and the script is bound to exactly that
version, so a Worker never enforces a mix of two versions (see DESIGN.md §3). Which migration
steps an upload carries is the plan's decision (`MigrationHistory.to_send`) from the tag the live
script carries; see docs/design/migrations.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_random as random

from infra.components.access_app import self_hosted_app
from infra.components.options import options
from infra.stack_plan import Binding, GatewayPlan, PreviousUpload


@dataclass(frozen=True)
class EdgeGatewayArgs:
    plan: GatewayPlan
    access_policy_ids: list[pulumi.Output[str]]
    """Reusable Access policies for the app, in the plan's precedence order."""
    identity_provider_id: pulumi.Output[str] | None
    service_token_ids: pulumi.Output[dict[str, str]]
    """Access client id → service-token name, for the Worker's ACCESS_CLIENTS binding."""
    secrets: Mapping[str, pulumi.Output[str]]
    """Pulumi secret config key → its (secret) value."""
    live_migration_tag: pulumi.Output[str | None]
    """The migration tag the live script carries (None: no script, or one without a tag)."""
    previous_upload: pulumi.Output[Any]
    """This script's entry in the stack's last `edge_scripts` output (None on a first deploy)."""
    late_values: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Binding name → value for bindings whose value is another resource's output."""


class EdgeGateway(pulumi.ComponentResource):
    url: pulumi.Output[str]
    policy_version: pulumi.Output[str]
    access_aud: pulumi.Output[str] | None
    upload: pulumi.Output[dict[str, Any]]
    """What this deploy gave the script: {"sent": migrations input, "fingerprint": of the rest}."""

    def __init__(self, name: str, args: EdgeGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airgate:edge:EdgeGateway", name, None, opts)
        plan = args.plan
        child = pulumi.ResourceOptions(parent=self)

        access_app = None
        self.access_aud = None
        if plan.access_app is not None:
            access_app = self_hosted_app(
                f"{name}-access",
                account_id=plan.account_id,
                app_name=plan.script_name,
                hostname=plan.hostname,
                policy_ids=args.access_policy_ids,
                identity_provider_id=args.identity_provider_id,
                opts=child,
            )
            self.access_aud = access_app.aud

        namespace = cloudflare.WorkersKvNamespace(
            f"{name}-kv",
            account_id=plan.account_id,
            title=plan.kv_title,
            opts=options(self, plan.namespace_protection),
        )
        policy_entry = cloudflare.WorkersKv(
            f"{name}-policy",
            account_id=plan.account_id,
            namespace_id=namespace.id,
            key_name=plan.policy_kv_key,
            value=plan.policy_value,
            opts=child,
        )

        # Secrets only the deploy and this Worker know (the key-set MAC: whoever can write the KV
        # namespace must not be able to plant a signing key), made here and kept as Pulumi secrets.
        late_values = dict(args.late_values)
        for binding in plan.bindings:
            if binding.fill == "random_secret":
                made = random.RandomBytes(
                    f"{name}-{binding.name.lower().replace('_', '-')}", length=32, opts=child
                )
                late_values[binding.name] = pulumi.Output.secret(made.base64)

        script_inputs: dict[str, Any] = {
            "account_id": plan.account_id,
            "script_name": plan.script_name,
            "content": plan.content,
            "main_module": plan.main_module,
            "compatibility_date": plan.compatibility_date,
            "bindings": [
                _binding(b, namespace, access_app, args.service_token_ids, args.secrets, late_values)
                for b in plan.bindings
            ],
            "observability": {"enabled": True, "logs": {"enabled": True, "invocation_logs": True}},
            "logpush": plan.logpush,
        }
        fingerprint = pulumi.Output.from_input(script_inputs).apply(_fingerprint)

        def decide(parts: list[Any]) -> dict[str, Any] | None:
            live_tag, previous, current = parts
            return plan.migrations.to_send(live_tag or None, PreviousUpload.from_output(previous), current)

        # The decision reads a fingerprint of secret inputs; what it yields (tags and class names)
        # is not secret, so the script's `migrations` input stays readable in plans.
        migrations = pulumi.Output.unsecret(
            pulumi.Output.all(args.live_migration_tag, args.previous_upload, fingerprint).apply(decide)
        )
        script = cloudflare.WorkersScript(
            f"{name}-script",
            **script_inputs,
            migrations=cast("pulumi.Input[cloudflare.WorkersScriptMigrationsArgsDict]", migrations),
            opts=options(self, plan.script_protection, depends_on=[policy_entry]),
        )

        if plan.expose == "custom_domain":
            cloudflare.WorkersCustomDomain(
                f"{name}-domain",
                account_id=plan.account_id,
                zone_id=plan.zone_id,
                hostname=plan.hostname,
                service=script.script_name,
                opts=child,
            )
        else:
            cloudflare.WorkersRoute(
                f"{name}-route",
                zone_id=plan.zone_id,
                pattern=f"{plan.hostname}/*",
                script=script.script_name,
                opts=child,
            )

        self.url = pulumi.Output.from_input(f"https://{plan.hostname}")
        self.policy_version = pulumi.Output.from_input(plan.policy_version)
        self.upload = pulumi.Output.secret(
            pulumi.Output.all(migrations, fingerprint).apply(lambda p: {"sent": p[0], "fingerprint": p[1]})
        )
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


def _fingerprint(inputs: Any) -> str:
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _binding(
    binding: Binding,
    namespace: cloudflare.WorkersKvNamespace,
    access_app: cloudflare.ZeroTrustAccessApplication | None,
    service_token_ids: pulumi.Output[dict[str, str]],
    secrets: Mapping[str, pulumi.Output[str]],
    late_values: Mapping[str, pulumi.Output[str]],
) -> cloudflare.WorkersScriptBindingArgsDict:
    if binding.late or binding.fill == "random_secret":
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
    if binding.fill == "access_audience" and access_app is not None:
        planned = binding.text or "{}"

        def with_audience(audience: str) -> str:
            return _with_audience(planned, audience)

        return {"name": binding.name, "type": "json", "json": access_app.aud.apply(with_audience)}
    if binding.fill == "service_token_ids":
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
