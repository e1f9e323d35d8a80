"""Workers KV: namespaces (title unique per account), values one by one (multipart `value` and
`metadata`, as the client library sends them, or a raw body), key listing with a cursor, metadata,
and the bulk write, read and delete."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Request, paged
from local_services.cloudflare_api.router import account, route
from local_services.cloudflare_api.store import State, Store

# Workers KV limits (https://developers.cloudflare.com/kv/platform/limits/): key ≤ 512 bytes, value ≤ 25 MiB,
# metadata ≤ 1024 bytes, 10,000 pairs per bulk request; refused with code 10033 as the lifecycle stand-in.
KV_KEY_LIMIT = 512
KV_VALUE_LIMIT = 25 * 1024 * 1024
KV_METADATA_LIMIT = 1024
BULK_LIMIT = 10_000
TOO_LARGE = 10033
# "a namespace with this account ID and title already exists [code: 10014]" (cloudflare/workers-sdk#13242).
DUPLICATE_TITLE = 10014
# Namespace not found (code 10013) and "get: 'key not found'" (code 10009), as the API answers them
# (tests/unit/standins.py and tests/lifecycle/cloudflare_api.py had them before this emulator).
NAMESPACE_NOT_FOUND = 10013
KEY_NOT_FOUND = 10009
# No public source names the code for a malformed KV request; 10001 stands in.
INVALID = 10001


def _namespace(state: State, request: Request) -> dict[str, Any]:
    found = account(state, request)["kv_namespaces"].get(request.params["namespace_id"])
    if found is None:
        raise ApiError(404, NAMESPACE_NOT_FOUND, "namespace not found")
    assert isinstance(found, dict)
    return found


def _public(namespace_id: str, namespace: dict[str, Any]) -> dict[str, Any]:
    return {"id": namespace_id, "title": namespace["title"], "supports_url_encoding": True}


def _title(request: Request) -> str:
    return Fields(request.json_object(INVALID), INVALID, "namespace").need_text("title")


def _unique(state: State, request: Request, title: str, namespace_id: str | None) -> None:
    for other_id, other in account(state, request)["kv_namespaces"].items():
        if other_id != namespace_id and other["title"] == title:
            raise ApiError(400, DUPLICATE_TITLE, "a namespace with this account ID and title already exists")


@route("POST", "/accounts/{account_id}/storage/kv/namespaces")
def create_namespace(request: Request, store: Store) -> Answer:
    title = _title(request)

    def apply(state: State) -> Answer:
        _unique(state, request, title, None)
        namespace_id = uuid.uuid4().hex
        account(state, request)["kv_namespaces"][namespace_id] = {"title": title, "values": {}}
        return Answer(_public(namespace_id, {"title": title}))

    return store.change(apply)


@route("GET", "/accounts/{account_id}/storage/kv/namespaces")
def list_namespaces(request: Request, store: Store) -> Answer:
    def look(state: State) -> list[dict[str, Any]]:
        namespaces = account(state, request)["kv_namespaces"]
        return sorted((_public(i, n) for i, n in namespaces.items()), key=lambda n: (n["title"], n["id"]))

    return paged(store.read(look), request, INVALID, per_page_default=20, high=1000)


@route("GET", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}")
def get_namespace(request: Request, store: Store) -> Answer:
    return store.read(
        lambda state: Answer(_public(request.params["namespace_id"], _namespace(state, request)))
    )


@route("PUT", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}")
def rename_namespace(request: Request, store: Store) -> Answer:
    title = _title(request)

    def apply(state: State) -> Answer:
        namespace = _namespace(state, request)
        _unique(state, request, title, request.params["namespace_id"])
        namespace["title"] = title
        return Answer(_public(request.params["namespace_id"], namespace))

    return store.change(apply)


@route("DELETE", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}")
def delete_namespace(request: Request, store: Store) -> Answer:
    def apply(state: State) -> Answer:
        _namespace(state, request)
        del account(state, request)["kv_namespaces"][request.params["namespace_id"]]
        return Answer({})

    return store.change(apply)


def _entry(key: str, data: bytes, metadata: Any, expiration: int | None) -> dict[str, Any]:
    if not key or len(key.encode()) > KV_KEY_LIMIT:
        raise ApiError(400, TOO_LARGE, f"KV key must be 1 to {KV_KEY_LIMIT} bytes long")
    if key in {".", ".."}:
        raise ApiError(400, INVALID, "KV key names '.' and '..' are not allowed")
    if len(data) > KV_VALUE_LIMIT:
        raise ApiError(400, TOO_LARGE, "KV value larger than 25 MiB")
    if metadata is not None and len(json.dumps(metadata).encode()) > KV_METADATA_LIMIT:
        raise ApiError(400, TOO_LARGE, f"KV metadata larger than {KV_METADATA_LIMIT} bytes")
    entry: dict[str, Any] = {"metadata": metadata, "expiration": expiration}
    try:
        entry["text"] = data.decode()
    except UnicodeDecodeError:
        entry["base64"] = base64.b64encode(data).decode()
    return entry


def _expiration(expiration: int | None, ttl: int | None) -> int | None:
    if ttl is not None:
        # The API's minimum: 60 seconds (https://developers.cloudflare.com/kv/api/write-key-value-pairs/).
        if ttl < 60:
            raise ApiError(400, INVALID, "expiration_ttl must be at least 60 seconds")
        return int(time.time()) + ttl
    return expiration


def _data(entry: dict[str, Any]) -> bytes:
    return entry["text"].encode() if "text" in entry else base64.b64decode(entry["base64"])


@route("PUT", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}")
def write_value(request: Request, store: Store) -> Answer:
    metadata: Any = None
    if request.is_multipart():
        parts = {part.name: part for part in request.parts(INVALID)}
        if "value" not in parts:
            raise ApiError(400, INVALID, "the multipart body needs a `value` part")
        data = parts["value"].data
        if "metadata" in parts:
            try:
                metadata = json.loads(parts["metadata"].data)
            except ValueError:
                raise ApiError(400, INVALID, "the `metadata` part is not JSON") from None
    else:
        data = request.body
    expiration = _expiration(
        request.query_int("expiration", 0, INVALID, low=0, high=2**62) or None,
        request.query_int("expiration_ttl", 0, INVALID, low=0, high=2**31) or None,
    )
    entry = _entry(request.params["key_name"], data, metadata, expiration)

    def apply(state: State) -> Answer:
        _namespace(state, request)["values"][request.params["key_name"]] = entry
        return Answer({})

    return store.change(apply)


def _live(namespace: dict[str, Any], key: str) -> dict[str, Any] | None:
    entry = namespace["values"].get(key)
    if entry is None or (entry["expiration"] is not None and entry["expiration"] <= time.time()):
        return None
    assert isinstance(entry, dict)
    return entry


def _found(state: State, request: Request) -> dict[str, Any]:
    """The live entry the path names, else Cloudflare's 404 for a missing key."""
    entry = _live(_namespace(state, request), request.params["key_name"])
    if entry is None:
        raise ApiError(404, KEY_NOT_FOUND, "get: 'key not found'")
    return entry


@route("GET", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}")
def read_value(request: Request, store: Store) -> Answer:
    def look(state: State) -> Answer:
        entry = _found(state, request)
        headers = {"expiration": str(entry["expiration"])} if entry["expiration"] else {}
        return Answer(raw=_data(entry), headers=headers)

    return store.read(look)


@route("GET", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/metadata/{key_name}")
def read_metadata(request: Request, store: Store) -> Answer:
    return store.read(lambda state: Answer(_found(state, request)["metadata"]))


@route("DELETE", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}")
def delete_value(request: Request, store: Store) -> Answer:
    def apply(state: State) -> Answer:
        _namespace(state, request)["values"].pop(request.params["key_name"], None)
        return Answer({})

    return store.change(apply)


@route("GET", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/keys")
def list_keys(request: Request, store: Store) -> Answer:
    """Keys in order, `limit` at a time (10 to 1000), with an opaque `cursor` to the next page."""
    limit = request.query_int("limit", 1000, INVALID, low=10, high=1000)
    prefix = request.query_value("prefix") or ""
    cursor = request.query_value("cursor") or ""
    try:
        after = base64.urlsafe_b64decode(cursor.encode()).decode() if cursor else ""
    except ValueError:
        raise ApiError(400, INVALID, "invalid cursor") from None

    def look(state: State) -> Answer:
        namespace = _namespace(state, request)
        names = sorted(
            k for k in namespace["values"] if k.startswith(prefix) and k > after and _live(namespace, k)
        )
        chunk = names[:limit]
        following = base64.urlsafe_b64encode(chunk[-1].encode()).decode() if len(names) > limit else ""
        keys = []
        for name in chunk:
            entry = namespace["values"][name]
            key: dict[str, Any] = {"name": name}
            if entry["expiration"]:
                key["expiration"] = entry["expiration"]
            if entry["metadata"] is not None:
                key["metadata"] = entry["metadata"]
            keys.append(key)
        return Answer(keys, result_info={"count": len(keys), "cursor": following})

    return store.read(look)


@route("PUT", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/bulk")
def bulk_write(request: Request, store: Store) -> Answer:
    pairs = request.json_list(INVALID)
    if len(pairs) > BULK_LIMIT:
        raise ApiError(400, TOO_LARGE, f"at most {BULK_LIMIT} pairs per bulk write")
    entries: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        if not isinstance(pair, dict):
            raise ApiError(400, INVALID, "each bulk pair must be an object")
        fields = Fields(pair, INVALID, "bulk pair")
        key, value = fields.need_text("key"), fields.text("value", required=True, empty=True)
        assert value is not None
        try:
            data = base64.b64decode(value, validate=True) if fields.flag("base64") else value.encode()
        except ValueError:
            raise ApiError(400, INVALID, f"value of {key!r} is not base64") from None
        expiration = _expiration(fields.number("expiration"), fields.number("expiration_ttl"))
        entries[key] = _entry(key, data, pair.get("metadata"), expiration)

    def apply(state: State) -> Answer:
        _namespace(state, request)["values"].update(entries)
        return Answer({"successful_key_count": len(entries), "unsuccessful_keys": []})

    return store.change(apply)


@route("POST", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/bulk/delete")
def bulk_delete(request: Request, store: Store) -> Answer:
    keys = request.json_list(INVALID)
    if not all(isinstance(key, str) for key in keys):
        raise ApiError(400, INVALID, "the body must be a list of key names")
    if len(keys) > BULK_LIMIT:
        raise ApiError(400, TOO_LARGE, f"at most {BULK_LIMIT} keys per bulk delete")

    def apply(state: State) -> Answer:
        values = _namespace(state, request)["values"]
        for key in keys:
            values.pop(key, None)
        return Answer({"successful_key_count": len(keys), "unsuccessful_keys": []})

    return store.change(apply)


@route("POST", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/bulk/get")
def bulk_read(request: Request, store: Store) -> Answer:
    fields = Fields(request.json_object(INVALID), INVALID, "bulk get")
    keys = fields.texts("keys")
    if not keys or len(keys) > 100:
        # https://developers.cloudflare.com/kv/api/read-key-value-pairs/: up to 100 keys per request.
        raise ApiError(400, INVALID, "keys: 1 to 100 key names")
    kind = fields.text("type") or "text"
    if kind not in {"text", "json"}:
        raise ApiError(400, INVALID, "type must be text or json")
    with_metadata = bool(fields.flag("withMetadata"))

    def look(state: State) -> Answer:
        namespace = _namespace(state, request)
        values: dict[str, Any] = {}
        for key in keys:
            entry = _live(namespace, key)
            value: Any = None
            if entry is not None:
                value = _data(entry).decode(errors="replace")
                if kind == "json":
                    try:
                        value = json.loads(value)
                    except ValueError:
                        raise ApiError(400, INVALID, f"the value of {key!r} is not JSON") from None
            # The published schema (the client's WorkersKVBulkGetResult) has no null value: a key that
            # is not there is left out, and is null only in the with-metadata form.
            if with_metadata:
                metadata = entry["metadata"] if entry else None
                expiration = entry["expiration"] if entry else None
                values[key] = (
                    {"value": value, "metadata": metadata, "expiration": expiration} if entry else None
                )
            elif entry is not None:
                values[key] = value
        return Answer({"values": values})

    return store.read(look)
