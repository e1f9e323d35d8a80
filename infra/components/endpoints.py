"""What the edge hands to the rest of the program: gateway endpoints and machine credentials.

The Airflow side builds its connections from these, so a task's connection always points at the
gateway the edge really created and carries the identity the edge really issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi


@dataclass(frozen=True)
class GatewayEndpoint:
    gateway: str
    hostname: str
    url: pulumi.Output[str]
    auth: Literal["access", "oidc"]


@dataclass(frozen=True)
class MachineCredential:
    """One machine identity. `client_secret` is always a Pulumi secret."""

    name: str
    kind: Literal["access_service_token", "oauth2_client"]
    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]


@dataclass(frozen=True)
class EdgeOutputs:
    endpoints: dict[str, GatewayEndpoint]
    """gateway name → endpoint"""
    service_tokens: dict[str, MachineCredential]
    """service-token name (current version) → credential; empty when no Access tokens exist"""
