"""What every Zero Trust Access collection shares: its codes, and create, replace, list, read and
delete over the account's objects of one kind, with a rule check before anything changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
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

BASE = "/accounts/{account_id}/access/"


def collection(state: State, request: Request, kind: str) -> dict[str, Any]:
    found = account(state, request)["access"][kind]
    assert isinstance(found, dict)
    return found


def find(state: State, request: Request, kind: str, key: str) -> dict[str, Any]:
    found = collection(state, request, kind).get(request.params[key])
    if found is None:
        raise ApiError(
            404,
            NOT_FOUND,
            f"access.api.error.not_found: no {kind[:-1].replace('_', ' ')} {request.params[key]}",
        )
    assert isinstance(found, dict)
    return found


def crud(
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
            collection(state, request, kind)[object_id] = stored
            return Answer(answer(state, request, object_id, stored))

        return store.change(apply)

    def replace(request: Request, store: Store) -> Answer:
        fields = validate(request.json_object(INVALID))

        def apply(state: State) -> Answer:
            current = find(state, request, kind, key)
            object_id = request.params[key]
            check(state, request, object_id, fields)
            stored = {**current, **fields, "updated_at": now()}
            collection(state, request, kind)[object_id] = stored
            return Answer(answer(state, request, object_id, stored))

        return store.change(apply)

    def listing(request: Request, store: Store) -> Answer:
        def look(state: State) -> list[dict[str, Any]]:
            items = sorted(
                collection(state, request, kind).items(), key=lambda pair: (pair[1]["created_at"], pair[0])
            )
            return [answer(state, request, object_id, stored) for object_id, stored in items]

        return paged(store.read(look), request, INVALID, per_page_default=25, high=1000)

    def read(request: Request, store: Store) -> Answer:
        return store.read(
            lambda state: Answer(answer(state, request, request.params[key], find(state, request, kind, key)))
        )

    def delete(request: Request, store: Store) -> Answer:
        def apply(state: State) -> Answer:
            find(state, request, kind, key)
            on_delete(state, request, request.params[key])
            del collection(state, request, kind)[request.params[key]]
            return Answer({"id": request.params[key]})

        return store.change(apply)

    route("POST", path)(create)
    route("GET", path)(listing)
    route("PUT", f"{path}/{{{key}}}")(replace)
    route("GET", f"{path}/{{{key}}}")(read)
    route("DELETE", f"{path}/{{{key}}}")(delete)


def plain(state: State, request: Request, object_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    return {"id": object_id, **{k: v for k, v in stored.items() if not k.startswith("_")}}


def no_check(state: State, request: Request, object_id: str, fields: dict[str, Any]) -> None:
    pass


def rules(fields: Fields, key: str, required: bool) -> list[dict[str, Any]]:
    rules = fields.objects(key, required=required) or []
    if required and not rules:
        raise fields.refuse(f"{key} needs at least one rule")
    return rules


def tokens_named(rules: list[dict[str, Any]]) -> list[str]:
    named = []
    for rule in rules:
        token = rule.get("service_token")
        if isinstance(token, dict) and isinstance(token.get("token_id"), str):
            named.append(token["token_id"])
    return named
