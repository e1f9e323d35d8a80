"""Stand-ins for what Cloudflare and Kubernetes compute at create time.

Without them provider-computed outputs (`aud`, `client_id`, `client_secret`, tunnel tokens) come
back empty and the program silently wires empty strings. Every fake is derived from the logical
name, so two plans of the same config are identical.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi


def _fake(name: str, purpose: str, length: int = 32) -> str:
    return hashlib.sha256(f"{purpose}:{name}".encode()).hexdigest()[:length]


COMPUTED: dict[str, dict[str, Any]] = {
    "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication": {"aud": "aud"},
    "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken": {
        "client_id": "client_id",
        "client_secret": "client_secret",
        "clientId": "client_id",
        "clientSecret": "client_secret",
    },
    "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared": {
        "tunnelSecret": "tunnel_secret",
    },
    "random:index/randomPassword:RandomPassword": {"result": "password"},
    "random:index/randomBytes:RandomBytes": {"base64": "bytes_b64", "hex": "bytes_hex"},
    "random:index/randomId:RandomId": {"hex": "id_hex", "b64Std": "id_b64"},
}


STACK_REFERENCE = "pulumi:pulumi:StackReference"


class AirgateMocks(pulumi.runtime.Mocks):
    """The offline plan is a first deploy: the stack has no previous outputs (its own stack
    reference reads `{}`) and the account has no scripts yet (every invoke answers `{}`)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            return str(args.inputs.get("name", args.name)), {**args.inputs, "outputs": {}}
        outputs = dict(args.inputs)
        for key, purpose in COMPUTED.get(args.typ, {}).items():
            if key not in outputs:
                value = _fake(args.name, purpose)
                if purpose == "client_id":
                    value = f"{value}.access"
                outputs[key] = value
        resource_id = f"{args.name}-{_fake(args.name, 'id', 12)}"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any] | None]:
        return {}, []
