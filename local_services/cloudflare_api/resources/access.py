"""Zero Trust Access at account level: identity providers, reusable policies, groups and
applications. Applications own their domain and name policies that must exist; a policy or group in
use cannot be deleted. Service tokens are in service_tokens.py."""

from __future__ import annotations

import secrets
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Request
from local_services.cloudflare_api.resources.access_common import (
    CONFLICT,
    IN_USE,
    INVALID,
    NOT_FOUND,
    collection,
    crud,
    no_check,
    plain,
    rules,
    tokens_named,
)
from local_services.cloudflare_api.store import State

DECISIONS = {"allow", "deny", "non_identity", "bypass"}


# --- identity providers ----------------------------------------------------------------------------


def _idp(body: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(body, INVALID, "access.api.error.invalid_request: identity provider")
    return {
        "name": fields.need_text("name"),
        "type": fields.need_text("type"),
        "config": fields.mapping("config", required=True),
        "scim_config": fields.mapping("scim_config") or {},
    }


crud("identity_providers", "identity_provider_id", _idp, no_check, plain)


# --- reusable policies -------------------------------------------------------------------------------


def _policy(body: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(body, INVALID, "access.api.error.invalid_request: policy")
    decision = fields.need_text("decision")
    if decision not in DECISIONS:
        raise fields.refuse(f"decision must be one of {', '.join(sorted(DECISIONS))}")
    return {
        "name": fields.need_text("name"),
        "decision": decision,
        "include": rules(fields, "include", required=True),
        "exclude": rules(fields, "exclude", required=False),
        "require": rules(fields, "require", required=False),
        "session_duration": fields.text("session_duration") or "24h",
        "approval_required": bool(fields.flag("approval_required")),
        "isolation_required": bool(fields.flag("isolation_required")),
        "purpose_justification_required": bool(fields.flag("purpose_justification_required")),
    }


def _policy_check(state: State, request: Request, object_id: str, fields: dict[str, Any]) -> None:
    tokens = collection(state, request, "service_tokens")
    groups = collection(state, request, "groups")
    for rule in fields["include"] + fields["exclude"] + fields["require"]:
        for token_id in tokens_named([rule]):
            if token_id not in tokens:
                raise ApiError(400, NOT_FOUND, f"access.api.error.not_found: service token {token_id!r}")
        group = rule.get("group")
        if isinstance(group, dict) and group.get("id") not in groups:
            raise ApiError(400, NOT_FOUND, f"access.api.error.not_found: group {group.get('id')!r}")


def _users_of_policy(state: State, request: Request, policy_id: str) -> list[str]:
    return sorted(
        app.get("domain") or app["name"]
        for app in collection(state, request, "applications").values()
        if policy_id in [p["id"] for p in app["policies"]]
    )


def _policy_answer(state: State, request: Request, object_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    return {
        **plain(state, request, object_id, stored),
        "reusable": True,
        "app_count": len(_users_of_policy(state, request, object_id)),
    }


def _policy_delete(state: State, request: Request, policy_id: str) -> None:
    users = _users_of_policy(state, request, policy_id)
    if users:
        # A reusable policy in use by an application cannot be deleted.
        raise ApiError(400, IN_USE, f"access.api.error.policy_in_use: used by {', '.join(users)}")


crud("policies", "policy_id", _policy, _policy_check, _policy_answer, _policy_delete)


# --- groups ----------------------------------------------------------------------------------------


def _group(body: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(body, INVALID, "access.api.error.invalid_request: group")
    return {
        "name": fields.need_text("name"),
        "include": rules(fields, "include", required=True),
        "exclude": rules(fields, "exclude", required=False),
        "require": rules(fields, "require", required=False),
    }


def _group_delete(state: State, request: Request, group_id: str) -> None:
    for policy in collection(state, request, "policies").values():
        for rule in policy["include"] + policy["exclude"] + policy["require"]:
            if isinstance(rule.get("group"), dict) and rule["group"].get("id") == group_id:
                raise ApiError(400, IN_USE, f"access.api.error.group_in_use: used by policy {policy['name']}")


crud("groups", "group_id", _group, no_check, plain, _group_delete)


# --- applications ------------------------------------------------------------------------------------


def _application(body: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(body, INVALID, "access.api.error.invalid_request: application")
    kind = fields.text("type") or "self_hosted"
    domain = fields.text("domain")
    if kind == "self_hosted" and domain is None:
        raise fields.refuse("a self_hosted application needs a domain")
    policies = []
    for index, entry in enumerate(fields.entries("policies")):
        policies.append(entry if isinstance(entry, dict) else {"id": entry, "precedence": index + 1})
    for policy in policies:
        precedence = policy.get("precedence", 1)
        if not isinstance(policy.get("id"), str) or not isinstance(precedence, int) or precedence < 1:
            # `policies` takes [{id, precedence}] with precedence ≥ 1 (docs/design notes §5).
            raise fields.refuse("policies are {id, precedence} with precedence of at least 1")
        policy.setdefault("precedence", 1)
    return {
        "type": kind,
        "name": fields.text("name") or domain,
        "domain": domain,
        "self_hosted_domains": [domain] if domain else [],
        "session_duration": fields.text("session_duration") or "24h",
        "allowed_idps": fields.texts("allowed_idps") or [],
        "auto_redirect_to_identity": bool(fields.flag("auto_redirect_to_identity")),
        "app_launcher_visible": fields.flag("app_launcher_visible") is not False,
        "policies": [{"id": p["id"], "precedence": p["precedence"]} for p in policies],
        "_aud": secrets.token_hex(32),
    }


def _application_check(state: State, request: Request, object_id: str, fields: dict[str, Any]) -> None:
    for other_id, other in collection(state, request, "applications").items():
        # One self-hosted application per domain in an account.
        if other_id != object_id and fields["domain"] and other.get("domain") == fields["domain"]:
            raise ApiError(
                400,
                CONFLICT,
                f"access.api.error.conflict: an application for {fields['domain']} already exists",
            )
        if other_id == object_id:
            fields["_aud"] = other["_aud"]  # the audience tag stays with the application
    policies = collection(state, request, "policies")
    for policy in fields["policies"]:
        # A reusable policy an application names must exist
        # (https://developers.cloudflare.com/cloudflare-one/policies/access/#reusable-policies).
        if policy["id"] not in policies:
            raise ApiError(400, NOT_FOUND, f"access.api.error.policy_not_found: {policy['id']}")
    idps = collection(state, request, "identity_providers")
    for idp in fields["allowed_idps"]:
        if idp not in idps:
            raise ApiError(400, NOT_FOUND, f"access.api.error.not_found: identity provider {idp}")


def _application_answer(
    state: State, request: Request, object_id: str, stored: dict[str, Any]
) -> dict[str, Any]:
    policies = collection(state, request, "policies")
    expanded = [
        {**_policy_answer(state, request, p["id"], policies[p["id"]]), "precedence": p["precedence"]}
        for p in stored["policies"]
        if p["id"] in policies
    ]
    return {**plain(state, request, object_id, stored), "aud": stored["_aud"], "policies": expanded}


crud("applications", "app_id", _application, _application_check, _application_answer)
