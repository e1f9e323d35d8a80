"""One Cloudflare Access service token from its `ServiceTokenPlan`: the callers' machine tokens
(AccessIdentity) and the trigger gateway's own token for Airflow's API (TriggerUpstreamIdentity).
Its client secret is always a Pulumi secret output."""

from __future__ import annotations

import pulumi
import pulumi_cloudflare as cloudflare

from infra.stack_plan import ServiceTokenPlan


def service_token(
    resource_name: str, account_id: str, token: ServiceTokenPlan, opts: pulumi.ResourceOptions
) -> cloudflare.ZeroTrustAccessServiceToken:
    return cloudflare.ZeroTrustAccessServiceToken(
        resource_name,
        account_id=account_id,
        name=token.name,
        duration=token.duration,
        # The plan sets both or neither (`Rotation.secret_version`; the provider's schema:
        # client_secret_version AlsoRequires previous_client_secret_expires_at).
        client_secret_version=None
        if token.client_secret_version is None
        else float(token.client_secret_version),
        previous_client_secret_expires_at=token.previous_client_secret_expires_at,
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["client_secret"])
        ),
    )
