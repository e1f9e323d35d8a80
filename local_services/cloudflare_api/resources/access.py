"""Zero Trust Access at account level: identity providers, reusable policies, groups, applications
and service tokens. Applications own their domain and name policies that must exist; a policy in use
cannot be deleted; service tokens issue their secret once and rotate it by version."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Request, paged
from local_services.cloudflare_api.router import account, route
from local_services.cloudflare_api.store import State, Store, now

# Access answers `access.api.error.*` messages; 12130 is what the lifecycle stand-in used for a domain
# another application holds, 12005 for a policy or token that does not exist, 12009 for deleting a
# policy in use. No public source names the code for a malformed Access body; 12130 stands in.
INVALID = 12130
CONFLICT = 12130
NOT_FOUND = 12005
IN_USE = 12009
DECISIONS = {"allow", "deny", "non_identity", "bypass"}
BASE = "/accounts/{account_id}/access/"


def _access(state: State, request: Request, kind: str) -> dict[str, Any]:
    collection = account(state, request)["access"][kind]
    assert isinstance(collection, dict)
    return collection


def _find(state: State, request: Request, kind: str, key: str) -> dict[str, Any]:
    found = _access(state, request, kind).get(request.params[key])
    if found is None:
        raise ApiError(
            404,
            NOT_FOUND,
            f"access.api.error.not_found: no {kind[:-1].replace('_', ' ')} {request.params[key]}",
        )
    assert isinstance(found, dict)
    return found


def _crud(
    kind: str,
    key: str,
    validate: Callable[[dict[str, Any]], dict[str, Any]],
    check: Callable[[State, Request, str, dict[str, Any]], None],
    answer: Callable[[State, Request, str, dict[str, Any]], dict[str, Any]],
    on_delete: Callable[[State, Request, str], None] = lambda state, request, object_id: None,
) -> None:
    """Create, replace, list, read and delete for one Access collection: `validate` reads the body
    (before any change), `check` applies the rules against the rest of the account."""
    path = BASE + kind.replace("applications", "apps")

    def create(request: Request, store: Store) -> Answer:
        fields = validate(request.json_object(INVALID))

        def apply(state: State) -> Answer:
            object_id = str(uuid.uuid4())
            check(state, request, object_id, fields)
            stamp = now()
            stored = {**fields, "created_at": stamp, "updated_at": stamp}
            _access(state, request, kind)[object_id] = stored
            return Answer(answer(state, request, object_id, stored))

        return store.change(apply)

    def replace(request: Request, store: Store) -> Answer:
        fields = validate(request.json_object(INVALID))

        def apply(state: State) -> Answer:
            current = _find(state, request, kind, key)
            object_id = request.params[key]
            check(state, request, object_id, fields)
            stored = {**current, **fields, "updated_at": now()}
            _access(state, request, kind)[object_id] = stored
            return Answer(answer(state, request, object_id, stored))

        return store.change(apply)

    def listing(request: Request, store: Store) -> Answer:
        def look(state: State) -> list[dict[str, Any]]:
            items = sorted(
                _access(state, request, kind).items(), key=lambda pair: (pair[1]["created_at"], pair[0])
            )
            return [answer(state, request, object_id, stored) for object_id, stored in items]

        return paged(store.read(look), request, INVALID, per_page_default=25, high=1000)

    def read(request: Request, store: Store) -> Answer:
        return store.read(
            lambda state: Answer(
                answer(state, request, request.params[key], _find(state, request, kind, key))
            )
        )

    def delete(request: Request, store: Store) -> Answer:
        def apply(state: State) -> Answer:
            _find(state, request, kind, key)
            on_delete(state, request, request.params[key])
            del _access(state, request, kind)[request.params[key]]
            return Answer({"id": request.params[key]})

        return store.change(apply)

    route("POST", path)(create)
    route("GET", path)(listing)
    route("PUT", f"{path}/{{{key}}}")(replace)
    route("GET", f"{path}/{{{key}}}")(read)
    route("DELETE", f"{path}/{{{key}}}")(delete)


def _plain(state: State, request: Request, object_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    return {"id": object_id, **{k: v for k, v in stored.items() if not k.startswith("_")}}


def _no_check(state: State, request: Request, object_id: str, fields: dict[str, Any]) -> None:
    pass


def _rules(fields: Fields, key: str, required: bool) -> list[dict[str, Any]]:
    rules = fields.objects(key, required=required) or []
    if required and not rules:
        raise fields.refuse(f"{key} needs at least one rule")
    return rules


def _tokens_named(rules: list[dict[str, Any]]) -> list[str]:
    named = []
    for rule in rules:
        token = rule.get("service_token")
        if isinstance(token, dict) and isinstance(token.get("token_id"), str):
            named.append(token["token_id"])
    return named


# --- identity providers ----------------------------------------------------------------------------


def _idp(body: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(body, INVALID, "access.api.error.invalid_request: identity provider")
    return {
        "name": fields.need_text("name"),
        "type": fields.need_text("type"),
        "config": fields.mapping("config", required=True),
        "scim_config": fields.mapping("scim_config") or {},
    }


_crud("identity_providers", "identity_provider_id", _idp, _no_check, _plain)


# --- reusable policies -------------------------------------------------------------------------------


def _policy(body: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(body, INVALID, "access.api.error.invalid_request: policy")
    decision = fields.need_text("decision")
    if decision not in DECISIONS:
        raise fields.refuse(f"decision must be one of {', '.join(sorted(DECISIONS))}")
    return {
        "name": fields.need_text("name"),
        "decision": decision,
        "include": _rules(fields, "include", required=True),
        "exclude": _rules(fields, "exclude", required=False),
        "require": _rules(fields, "require", required=False),
        "session_duration": fields.text("session_duration") or "24h",
        "approval_required": bool(fields.flag("approval_required")),
        "isolation_required": bool(fields.flag("isolation_required")),
        "purpose_justification_required": bool(fields.flag("purpose_justification_required")),
    }


def _policy_check(state: State, request: Request, object_id: str, fields: dict[str, Any]) -> None:
    tokens = _access(state, request, "service_tokens")
    groups = _access(state, request, "groups")
    for rule in fields["include"] + fields["exclude"] + fields["require"]:
        for token_id in _tokens_named([rule]):
            if token_id not in tokens:
                raise ApiError(400, NOT_FOUND, f"access.api.error.not_found: service token {token_id!r}")
        group = rule.get("group")
        if isinstance(group, dict) and group.get("id") not in groups:
            raise ApiError(400, NOT_FOUND, f"access.api.error.not_found: group {group.get('id')!r}")


def _users_of_policy(state: State, request: Request, policy_id: str) -> list[str]:
    return sorted(
        app.get("domain") or app["name"]
        for app in _access(state, request, "applications").values()
        if policy_id in [p["id"] for p in app["policies"]]
    )


def _policy_answer(state: State, request: Request, object_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    return {
        **_plain(state, request, object_id, stored),
        "reusable": True,
        "app_count": len(_users_of_policy(state, request, object_id)),
    }


def _policy_delete(state: State, request: Request, policy_id: str) -> None:
    users = _users_of_policy(state, request, policy_id)
    if users:
        # A reusable policy in use by an application cannot be deleted.
        raise ApiError(400, IN_USE, f"access.api.error.policy_in_use: used by {', '.join(users)}")


_crud("policies", "policy_id", _policy, _policy_check, _policy_answer, _policy_delete)


# --- groups ----------------------------------------------------------------------------------------


def _group(body: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(body, INVALID, "access.api.error.invalid_request: group")
    return {
        "name": fields.need_text("name"),
        "include": _rules(fields, "include", required=True),
        "exclude": _rules(fields, "exclude", required=False),
        "require": _rules(fields, "require", required=False),
    }


def _group_delete(state: State, request: Request, group_id: str) -> None:
    for policy in _access(state, request, "policies").values():
        for rule in policy["include"] + policy["exclude"] + policy["require"]:
            if isinstance(rule.get("group"), dict) and rule["group"].get("id") == group_id:
                raise ApiError(400, IN_USE, f"access.api.error.group_in_use: used by policy {policy['name']}")


_crud("groups", "group_id", _group, _no_check, _plain, _group_delete)


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
    for other_id, other in _access(state, request, "applications").items():
        # One self-hosted application per domain in an account.
        if other_id != object_id and fields["domain"] and other.get("domain") == fields["domain"]:
            raise ApiError(
                400,
                CONFLICT,
                f"access.api.error.conflict: an application for {fields['domain']} already exists",
            )
        if other_id == object_id:
            fields["_aud"] = other["_aud"]  # the audience tag stays with the application
    policies = _access(state, request, "policies")
    for policy in fields["policies"]:
        # A reusable policy an application names must exist
        # (https://developers.cloudflare.com/cloudflare-one/policies/access/#reusable-policies).
        if policy["id"] not in policies:
            raise ApiError(400, NOT_FOUND, f"access.api.error.policy_not_found: {policy['id']}")
    idps = _access(state, request, "identity_providers")
    for idp in fields["allowed_idps"]:
        if idp not in idps:
            raise ApiError(400, NOT_FOUND, f"access.api.error.not_found: identity provider {idp}")


def _application_answer(
    state: State, request: Request, object_id: str, stored: dict[str, Any]
) -> dict[str, Any]:
    policies = _access(state, request, "policies")
    expanded = [
        {**_policy_answer(state, request, p["id"], policies[p["id"]]), "precedence": p["precedence"]}
        for p in stored["policies"]
        if p["id"] in policies
    ]
    return {**_plain(state, request, object_id, stored), "aud": stored["_aud"], "policies": expanded}


_crud("applications", "app_id", _application, _application_check, _application_answer)


# --- service tokens ----------------------------------------------------------------------------------

# "Must be in the format `300ms` or `2h45m`, or the special value `forever` ... Valid time units are: ns,
# us (or µs), ms, s, m, h" (the client's service_tokens.create docstring, from the API's schema).
DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$")
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _duration(text: str) -> timedelta:
    if text == "forever":
        return timedelta(days=365 * 100)
    if not DURATION.match(text):
        raise ApiError(
            400,
            INVALID,
            f"access.api.error.invalid_request: duration {text!r} (e.g. 8760h, 2h45m or forever)",
        )
    seconds = sum(
        float(n) * UNIT_SECONDS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    )
    if seconds <= 0:
        raise ApiError(400, INVALID, "access.api.error.invalid_request: duration must be positive")
    return timedelta(seconds=seconds)


def _token(body: dict[str, Any]) -> dict[str, Any]:
    """The body's fields as sent; what an update leaves out stays as it was (`_token_check`)."""
    fields = Fields(body, INVALID, "access.api.error.invalid_request: service token")
    duration, version = fields.text("duration"), fields.number("client_secret_version")
    if duration is not None:
        _duration(duration)
    if version is not None and version < 1:
        raise fields.refuse("client_secret_version starts at 1")
    read = {
        "name": fields.need_text("name"),
        "duration": duration,
        "enabled": fields.flag("enabled"),
        "client_secret_version": version,
        "previous_client_secret_expires_at": fields.text("previous_client_secret_expires_at"),
    }
    return {key: value for key, value in read.items() if value is not None}


def _expiry(duration: str) -> str:
    return (datetime.now(UTC) + _duration(duration)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_check(state: State, request: Request, object_id: str, fields: dict[str, Any]) -> None:
    current = _access(state, request, "service_tokens").get(object_id)
    if current is None:
        version = fields.setdefault("client_secret_version", 1)
        fields.setdefault("duration", "8760h")
        fields.setdefault("enabled", True)
        fields.setdefault("previous_client_secret_expires_at", None)
        fields["client_id"] = f"{secrets.token_hex(16)}.access"
        fields["secrets"] = {str(version): secrets.token_hex(32)}
        fields["expires_at"] = _expiry(fields["duration"])
        return
    version, wanted = current["client_secret_version"], fields.get("client_secret_version")
    if wanted is not None and wanted < version:
        raise ApiError(
            400, INVALID, "access.api.error.invalid_request: client_secret_version can only increase"
        )
    if wanted is not None and wanted > version:
        # Incrementing client_secret_version rotates the secret; "the previous secret will still be
        # accepted until the time indicated by previous_client_secret_expires_at" (the API's schema), so a
        # rotation names that time (the provider's schema: the two fields AlsoRequire each other).
        if "previous_client_secret_expires_at" not in fields:
            raise ApiError(
                400,
                INVALID,
                "access.api.error.invalid_request: a new client_secret_version needs "
                "previous_client_secret_expires_at",
            )
        fields["secrets"] = {**current["secrets"], str(wanted): secrets.token_hex(32)}
    if "duration" in fields and fields["duration"] != current["duration"]:
        fields["expires_at"] = _expiry(fields["duration"])


def _token_answer(state: State, request: Request, object_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "name",
        "client_id",
        "duration",
        "enabled",
        "expires_at",
        "client_secret_version",
        "previous_client_secret_expires_at",
        "created_at",
        "updated_at",
    )
    return {"id": object_id, **{key: stored[key] for key in keys}}


def _issued_token_answer(
    state: State, request: Request, object_id: str, stored: dict[str, Any]
) -> dict[str, Any]:
    answer = _token_answer(state, request, object_id, stored)
    version = str(stored["client_secret_version"])
    if version not in stored.get("_shown", []):
        # The secret is shown when it is issued (create, or an update that rotates it), never again.
        answer["client_secret"] = stored["secrets"][version]
        stored["_shown"] = [*stored.get("_shown", []), version]
    return answer


def _token_delete(state: State, request: Request, token_id: str) -> None:
    for policy in _access(state, request, "policies").values():
        if token_id in _tokens_named(policy["include"] + policy["exclude"] + policy["require"]):
            raise ApiError(
                400, IN_USE, f"access.api.error.service_token_in_use: used by policy {policy['name']}"
            )


_crud("service_tokens", "service_token_id", _token, _token_check, _issued_token_answer, _token_delete)


@route("POST", BASE + "service_tokens/{service_token_id}/rotate")
def rotate(request: Request, store: Store) -> Answer:
    """A new secret under the next version; the previous one is accepted until
    `previous_client_secret_expires_at`, "if not provided, it defaults to the current timestamp in order
    to immediately expire the previous secret" (the API's schema)."""
    body = request.json_object(INVALID) if request.body.strip() else {}
    expires = Fields(body, INVALID, "rotate").text("previous_client_secret_expires_at")

    def apply(state: State) -> Answer:
        token = _find(state, request, "service_tokens", "service_token_id")
        version = token["client_secret_version"] + 1
        token["secrets"] = {**token["secrets"], str(version): secrets.token_hex(32)}
        token["client_secret_version"] = version
        token["previous_client_secret_expires_at"] = expires or now()
        token["updated_at"] = now()
        return Answer(_issued_token_answer(state, request, request.params["service_token_id"], token))

    return store.change(apply)


@route("POST", BASE + "service_tokens/{service_token_id}/refresh")
def refresh(request: Request, store: Store) -> Answer:
    """Extends the token's life by its duration from now."""

    def apply(state: State) -> Answer:
        token = _find(state, request, "service_tokens", "service_token_id")
        token["expires_at"] = _expiry(token["duration"])
        token["updated_at"] = now()
        return Answer(_token_answer(state, request, request.params["service_token_id"], token))

    return store.change(apply)
