"""AccessIdentity: the stack's Cloudflare Access identity, from its `AccessPlan` — the OIDC identity
provider, one reusable Access policy per (role, people|machines), and the service tokens machines
present.

Service-token secrets stay Pulumi secrets. Rotation is the provider's own: bumping
`rotation.version` issues a new client secret, and `previous_secret_expires_at` keeps the old one
valid until then, so callers move over without an outage.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from infra.components.options import options
from infra.components.service_token import service_token
from infra.stack_plan import AccessPlan


@dataclass(frozen=True)
class AccessIdentityArgs:
    plan: AccessPlan
    idp_client_secret: pulumi.Output[str] | None


class AccessIdentity(pulumi.ComponentResource):
    identity_provider_id: pulumi.Output[str] | None
    policy_ids: dict[str, pulumi.Output[str]]
    tokens: dict[str, cloudflare.ZeroTrustAccessServiceToken]

    def __init__(
        self, name: str, args: AccessIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("airgate:access:AccessIdentity", name, None, opts)
        plan = args.plan
        child = pulumi.ResourceOptions(parent=self)

        self.identity_provider_id = None
        idp_plan = plan.identity_provider
        if idp_plan is not None:
            assert args.idp_client_secret is not None
            idp = cloudflare.ZeroTrustAccessIdentityProvider(
                f"{name}-idp",
                account_id=plan.account_id,
                name=idp_plan.name,
                type="oidc",
                config={
                    "client_id": idp_plan.client_id,
                    "client_secret": args.idp_client_secret,
                    "auth_url": f"{idp_plan.issuer}/v1/authorize",
                    "token_url": f"{idp_plan.issuer}/v1/token",
                    "certs_url": f"{idp_plan.issuer}/v1/keys",
                    "scopes": ["openid", "email", "profile", plan.roles_claim],
                    "claims": [plan.roles_claim],
                    "pkce_enabled": True,
                },
                opts=child,
            )
            self.identity_provider_id = idp.id

        self.tokens = {}
        for token in plan.tokens:
            self.tokens[token.key] = service_token(
                f"{name}-token-{token.key}", plan.account_id, token, options(self, plan.token_protection)
            )

        self.policy_ids = {}
        for policy_plan in plan.policies:
            includes: list[cloudflare.ZeroTrustAccessPolicyIncludeArgsDict] = []
            for group in policy_plan.groups:
                assert self.identity_provider_id is not None  # groups imply an IdP
                includes.append(
                    {
                        "oidc": {
                            "claim_name": plan.roles_claim,
                            "claim_value": group,
                            "identity_provider_id": self.identity_provider_id,
                        }
                    }
                )
            includes += [{"email": {"email": email}} for email in policy_plan.emails]
            includes += [
                {"service_token": {"token_id": self.tokens[token].id}} for token in policy_plan.service_tokens
            ]
            policy = cloudflare.ZeroTrustAccessPolicy(
                f"{name}-{policy_plan.key}",
                account_id=plan.account_id,
                name=f"{plan.name_prefix}-{policy_plan.key}",
                decision=policy_plan.decision,
                includes=includes,
                session_duration="8h" if policy_plan.decision == "allow" else None,
                opts=child,
            )
            self.policy_ids[policy_plan.key] = policy.id

        self.register_outputs(
            {
                "policy_ids": self.policy_ids,
                "service_token_ids": {n: t.client_id for n, t in self.tokens.items()},
            }
        )
