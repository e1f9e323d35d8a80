"""Zero Trust Access service tokens: the secret is shown once, when it is issued; a new
`client_secret_version` (or POST …/rotate) issues the next secret while the previous one holds until
`previous_client_secret_expires_at`; a token a policy names cannot be deleted."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Request
from local_services.cloudflare_api.resources.access_common import (
    BASE,
    IN_USE,
    INVALID,
    collection,
    crud,
    find,
    tokens_named,
)
from local_services.cloudflare_api.router import route
from local_services.cloudflare_api.store import State, Store, now

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
    current = collection(state, request, "service_tokens").get(object_id)
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
    for policy in collection(state, request, "policies").values():
        if token_id in tokens_named(policy["include"] + policy["exclude"] + policy["require"]):
            raise ApiError(
                400, IN_USE, f"access.api.error.service_token_in_use: used by policy {policy['name']}"
            )


crud("service_tokens", "service_token_id", _token, _token_check, _issued_token_answer, _token_delete)


@route("POST", BASE + "service_tokens/{service_token_id}/rotate")
def rotate(request: Request, store: Store) -> Answer:
    """A new secret under the next version; the previous one is accepted until
    `previous_client_secret_expires_at`, "if not provided, it defaults to the current timestamp in order
    to immediately expire the previous secret" (the API's schema)."""
    body = request.json_object(INVALID) if request.body.strip() else {}
    expires = Fields(body, INVALID, "rotate").text("previous_client_secret_expires_at")

    def apply(state: State) -> Answer:
        token = find(state, request, "service_tokens", "service_token_id")
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
        token = find(state, request, "service_tokens", "service_token_id")
        token["expires_at"] = _expiry(token["duration"])
        token["updated_at"] = now()
        return Answer(_token_answer(state, request, request.params["service_token_id"], token))

    return store.change(apply)
