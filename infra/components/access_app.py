"""One way to put a hostname behind Cloudflare Access: a self-hosted application guarded by
reusable policies in precedence order (1, 2, ...), with the stack's IdP when people sign in."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_cloudflare as cloudflare


def self_hosted_app(
    resource_name: str,
    *,
    account_id: str,
    app_name: str,
    hostname: str,
    policy_ids: Sequence[pulumi.Input[str]],
    identity_provider_id: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
    launcher_visible: bool = False,
    session_duration: str = "8h",
) -> cloudflare.ZeroTrustAccessApplication:
    return cloudflare.ZeroTrustAccessApplication(
        resource_name,
        account_id=account_id,
        name=app_name,
        type="self_hosted",
        domain=hostname,
        destinations=[{"type": "public", "uri": hostname}],
        policies=[
            {"id": policy_id, "precedence": index} for index, policy_id in enumerate(policy_ids, start=1)
        ],
        allowed_idps=[identity_provider_id] if identity_provider_id is not None else [],
        auto_redirect_to_identity=identity_provider_id is not None,
        app_launcher_visible=launcher_visible,
        session_duration=session_duration,
        http_only_cookie_attribute=True,
        same_site_cookie_attribute="lax",
        opts=opts,
    )
