"""Which roles verified token claims hold at one gateway, and every name a revocation may use:
the Python twin of `identify` in worker_templates/lib/identity.js (the unit tests run both on
generated claims and compare)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.policy.control import Control


@dataclass(frozen=True)
class Identity:
    subject: str
    ids: tuple[str, ...]
    """Every identifier the `control` document's `revoked_subjects` may name for this caller."""
    roles: tuple[str, ...]


def _values(claim: Any) -> list[str]:
    if isinstance(claim, str):
        return [claim]
    return [v for v in claim if isinstance(v, str)] if isinstance(claim, list) else []


def _text(value: Any) -> str | None:
    """JavaScript's `String(x)` for the claim values a subject is built from."""
    if value is None or value == "" or value is False or value == 0:
        return None
    if isinstance(value, bool):
        return "true"
    return value if isinstance(value, str) else str(value)


def identify(
    claims: Mapping[str, Any],
    mode: str,
    policy: Mapping[str, Any],
    roles_claim: str = "groups",
    access_clients: Mapping[str, str] | None = None,
) -> Identity:
    """`mode` is the gateway's auth (`oidc` or `access`); `access_clients` maps a service token's
    Access client id to its name (known only once deployed)."""
    groups = _values(claims.get(roles_claim or "groups"))
    email = claims["email"].lower() if isinstance(claims.get("email"), str) else None
    clients: list[str] = []
    token_name: str | None = None
    if mode == "access":
        common_name = claims.get("common_name")
        if common_name:
            token_name = (access_clients or {}).get(str(common_name))
    else:
        clients = [claims[k] for k in ("sub", "client_id", "azp") if isinstance(claims.get(k), str)]
    roles = sorted(
        name
        for name, role in policy["roles"].items()
        if any(g in role["groups"] for g in groups)
        or (email is not None and email in role["emails"])
        or (token_name is not None and token_name in role["service_tokens"])
        or any(c in role["oidc_clients"] for c in clients)
    )
    subject = (
        token_name
        or _text(claims.get("sub"))
        or email
        or _text(claims.get("common_name"))
        or _text(claims.get("client_id"))
        or "unknown"
    )
    candidates = [
        subject,
        claims.get("sub"),
        email,
        claims.get("common_name"),
        token_name,
        claims.get("client_id"),
    ]
    # A non-string claim can never equal a revoked name (strings), so only strings are kept.
    ids = tuple(c for c in candidates if isinstance(c, str) and c)
    return Identity(subject, ids, tuple(roles))


def apply_control(identity: Identity, control: Control) -> tuple[bool, tuple[str, ...]]:
    """(revoked, roles left once the kill switch's disabled roles are taken away), as the Worker does."""
    revoked = any(i in control.revoked_subjects for i in identity.ids)
    return revoked, tuple(r for r in identity.roles if r not in control.disabled_roles)
