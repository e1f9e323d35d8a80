"""AccessIdentity: the stack's Cloudflare Access identity — the OIDC identity provider, one
reusable Access policy per (role, people|machines), and the service tokens machines present.

Service-token secrets stay Pulumi secrets. Rotation is the provider's own: bumping
`rotation.version` issues a new client secret, and `previous_secret_expires_at` keeps the old one
valid until then, so callers move over without an outage.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from infra.config.model import StackConfig
from infra.policy.access_plan import (
    needs_identity_provider,
    plan_access_policies,
    uses_access,
)


@dataclass(frozen=True)
class AccessIdentityArgs:
    stack_name: str
    stack: StackConfig
    idp_client_secret: pulumi.Output[str]


class AccessIdentity(pulumi.ComponentResource):
    identity_provider_id: pulumi.Output[str] | None
    policy_ids: dict[str, pulumi.Output[str]]
    tokens: dict[str, cloudflare.ZeroTrustAccessServiceToken]

    def __init__(
        self, name: str, args: AccessIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("airgate:access:AccessIdentity", name, None, opts)
        stack = args.stack
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"airgate-{args.stack_name}"

        self.identity_provider_id = None
        if needs_identity_provider(stack):
            oidc = stack.identity.oidc
            idp = cloudflare.ZeroTrustAccessIdentityProvider(
                f"{name}-idp",
                account_id=stack.account_id,
                name=f"{prefix}-{oidc.identity_provider_name}",
                type="oidc",
                config={
                    "client_id": oidc.client_id,
                    "client_secret": args.idp_client_secret,
                    "auth_url": f"{oidc.issuer}/v1/authorize",
                    "token_url": f"{oidc.issuer}/v1/token",
                    "certs_url": f"{oidc.issuer}/v1/keys",
                    "scopes": ["openid", "email", "profile", oidc.roles_claim],
                    "claims": [oidc.roles_claim],
                    "pkce_enabled": True,
                },
                opts=child,
            )
            self.identity_provider_id = idp.id

        self.tokens = {}
        self.policy_ids = {}
        if not uses_access(stack):
            self.register_outputs({})
            return
        for token_name in sorted(stack.service_tokens):
            token = stack.service_tokens[token_name]
            expires = token.rotation.previous_secret_expires_at
            self.tokens[token_name] = cloudflare.ZeroTrustAccessServiceToken(
                f"{name}-token-{token_name}",
                account_id=stack.account_id,
                name=f"{prefix}-{token_name}",
                duration=token.duration,
                client_secret_version=float(token.rotation.version),
                previous_client_secret_expires_at=(
                    expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires else None
                ),
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["client_secret"]),
            )

        for plan in plan_access_policies(stack):
            includes: list[cloudflare.ZeroTrustAccessPolicyIncludeArgsDict] = []
            for group in plan.groups:
                assert self.identity_provider_id is not None  # groups imply an IdP
                includes.append(
                    {
                        "oidc": {
                            "claim_name": stack.identity.oidc.roles_claim,
                            "claim_value": group,
                            "identity_provider_id": self.identity_provider_id,
                        }
                    }
                )
            includes += [{"email": {"email": email}} for email in plan.emails]
            includes += [
                {"service_token": {"token_id": self.tokens[token].id}} for token in plan.service_tokens
            ]
            policy = cloudflare.ZeroTrustAccessPolicy(
                f"{name}-{plan.key}",
                account_id=stack.account_id,
                name=f"{prefix}-{plan.key}",
                decision=plan.decision,
                includes=includes,
                session_duration="8h" if plan.decision == "allow" else None,
                opts=child,
            )
            self.policy_ids[plan.key] = policy.id

        self.register_outputs(
            {
                "policy_ids": self.policy_ids,
                "service_token_ids": {n: t.client_id for n, t in self.tokens.items()},
            }
        )
