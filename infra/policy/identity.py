"""Which roles verified token claims hold at one gateway, and every name a revocation may use:
the Python twin of `identify` in worker_templates/lib/identity.js (the unit tests run both on
generated claims and compare), and of the Worker's revocation and kill-switch step (lib/gateway.js).

Only what the identity provider vouches for counts, as in the Worker:
- an email: always in an Access JWT; in an OIDC token only with `email_verified: true`
  (OpenID Connect Core 1.0 §5.1);
- an OIDC client id: only on a client-credentials token, whose `client_id` equals its `sub`
  (RFC 9068 §2.2); never a token's `azp` or a person's `sub`;
- an Access service token: its `common_name`, named by the stack's service tokens.
Claims with no usable subject are refused (`SubjectMissing`, the Worker's 401 token_subject_missing):
no `sub` and no service-token client id, or a subject the `x-airgate-subject` header cannot carry as
it is (a control character, or white space at either end, which the runtime would trim).
"""

from __future__ import annotations

import re
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


# identity.js `UNCARRIED` (`\Z`, not `$`: Python's `$` also matches before a final newline).
_UNCARRIED = re.compile(r"[\x00-\x1f\x7f]|\A[ \t]|[ \t]\Z")


class SubjectMissing(ValueError):
    """No usable subject (none at all, or one a header cannot carry as it is): the Worker answers 401
    (token_subject_missing)."""


def _values(claim: Any) -> list[str]:
    if isinstance(claim, str):
        return [claim]
    return [v for v in claim if isinstance(v, str)] if isinstance(claim, list) else []


def _text(value: Any) -> str | None:
    """identity.js `text`: a non-empty string, else nothing (no other type is read as a name)."""
    return value if isinstance(value, str) and value else None


def identify(
    claims: Mapping[str, Any],
    mode: str,
    policy: Mapping[str, Any],
    roles_claim: str = "groups",
    access_clients: Mapping[str, str] | None = None,
) -> Identity:
    """`mode` is the gateway's auth (`oidc` or `access`); `access_clients` maps a service token's
    Access client id to its name (known only once deployed). Raises `SubjectMissing`."""
    groups = _values(claims.get(roles_claim or "groups"))
    sub = _text(claims.get("sub"))
    vouched = mode == "access" or claims.get("email_verified") is True
    email = _text(claims.get("email")) if vouched else None
    email = email.lower() if email else None
    client: str | None = None
    token_name: str | None = None
    if mode == "access":
        client = _text(claims.get("common_name"))
        named = (access_clients or {}).get(client) if client else None
        token_name = named if isinstance(named, str) and named else None
    elif sub is not None and claims.get("client_id") == sub:
        client = sub
    subject = token_name or sub or client
    if subject is None:
        raise SubjectMissing("the token names no subject (no `sub`, no service-token client id)")
    if _UNCARRIED.search(subject):
        raise SubjectMissing(f"the subject {subject!r} cannot be carried in a header as it is")
    roles = sorted(
        name
        for name, role in policy["roles"].items()
        if any(g in role["groups"] for g in groups)
        or (email is not None and email in role["emails"])
        or (token_name is not None and token_name in role["service_tokens"])
        or (mode == "oidc" and client is not None and client in role["oidc_clients"])
    )
    ids = tuple(i for i in (subject, sub, email, client, token_name) if i)
    return Identity(subject, ids, tuple(roles))


def revoked_names(control: Control) -> frozenset[str]:
    """gateway.js `loadControl`: names compare exactly, and a name with `@` also lower-cased (an
    identity holds its email lower-cased)."""
    names = set(control.revoked_subjects)
    names.update(n.lower() for n in control.revoked_subjects if "@" in n)
    return frozenset(names)


def apply_control(identity: Identity, control: Control) -> tuple[bool, tuple[str, ...]]:
    """(revoked, roles left), as the Worker does: a revoked caller holds no role (a request is
    refused 403 subject_revoked); otherwise the kill switch's disabled roles are taken away."""
    if not revoked_names(control).isdisjoint(identity.ids):
        return True, ()
    return False, tuple(r for r in identity.roles if r not in control.disabled_roles)
