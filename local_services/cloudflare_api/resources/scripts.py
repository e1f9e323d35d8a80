"""Workers scripts: the multipart upload (metadata + modules), the account's script list, a script's
content and settings, and delete. The rules are the API's for an upload: size, one name per binding,
bindings to things that exist, Durable Object classes created by migrations, and the migration tag
precondition."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Part, Request, whole
from local_services.cloudflare_api.router import account, route
from local_services.cloudflare_api.store import State, Store, now

# Workers limits (https://developers.cloudflare.com/workers/platform/limits/): a script of at most 10 MB
# after compression on the paid plan; the emulator applies it to the uncompressed upload (code 10027,
# "script exceeds the size limit", as tests/lifecycle/cloudflare_api.py has it).
SCRIPT_SIZE_LIMIT = 10 * 1024 * 1024
# The code the Workers API gives an upload it cannot use: 400 with 10021, e.g. "Uncaught TypeError: Main
# module name is not present in bundle." (cloudflare/wrangler-legacy#1952) or "Uncaught Error: No such
# module" (Harry-zklcdc/go-proxy-bingai#254); the emulator uses it for every malformed upload or setting.
INVALID = 10021
# "This Worker does not exist on your account. (10007)" (crowdsecurity/cs-cloudflare-worker-bouncer#44).
NOT_FOUND = 10007
SECRET_TYPES = {"secret_text", "secret_key"}


def _script(state: State, request: Request) -> dict[str, Any]:
    found = account(state, request)["scripts"].get(request.params["script_name"])
    if found is None:
        raise ApiError(404, NOT_FOUND, "This Worker does not exist on your account.")
    assert isinstance(found, dict)
    return found


def _module(part: Part) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "content_type": part.content_type,
        "size": len(part.data),
        "sha256": hashlib.sha256(part.data).hexdigest(),
    }
    try:
        entry["text"] = part.data.decode()
    except UnicodeDecodeError:
        entry["base64"] = base64.b64encode(part.data).decode()
    return entry


def _json_part(parts: list[Part], name: str, body: str) -> dict[str, Any]:
    """The one multipart part called `name`, a JSON object (`body` names the request in errors)."""
    found = [part for part in parts if part.name == name]
    if len(found) != 1:
        raise ApiError(400, INVALID, f"{body} needs exactly one `{name}` part")
    try:
        value = json.loads(found[0].data)
    except ValueError:
        raise ApiError(400, INVALID, f"the `{name}` part is not JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, INVALID, f"the `{name}` part must be a JSON object")
    return value


def _bindings(
    metadata: Fields, namespaces: dict[str, Any], existing: dict[str, Any] | None
) -> list[dict[str, Any]]:
    bindings = list(metadata.objects("bindings") or [])
    # `keep_bindings`: "List of binding types to keep from previous_upload" (the metadata's schema); a
    # binding of such a type that the upload does not name again stays (how secrets survive a deploy).
    kept_types = set(metadata.texts("keep_bindings") or [])
    named = {binding.get("name") for binding in bindings}
    for previous in (existing or {}).get("bindings", []):
        if previous["type"] in kept_types and previous["name"] not in named:
            bindings.append(previous)
    names: set[str] = set()
    for binding in bindings:
        fields = Fields(binding, INVALID, "binding")
        name, kind = fields.need_text("name"), fields.need_text("type")
        if name in names:
            # Binding names share one namespace per script: the Worker sees them as `env.<NAME>`.
            raise ApiError(400, INVALID, f"binding name {name!r} is used more than once")
        names.add(name)
        if kind == "kv_namespace" and fields.need_text("namespace_id") not in namespaces:
            # A KV binding names a namespace of the account (code 10041 as the lifecycle stand-in has it).
            raise ApiError(400, 10041, f"KV namespace {binding['namespace_id']!r} not found")
        if kind in {"plain_text", "secret_text"}:
            fields.text("text", required=True, empty=True)
    return bindings


def _steps(migrations: dict[str, Any]) -> list[Fields]:
    steps = Fields(migrations, INVALID, "migrations").objects("steps")
    return [
        Fields(step, INVALID, "migration step") for step in (steps if steps is not None else [migrations])
    ]


def _migrate(
    existing: dict[str, Any] | None, migrations: dict[str, Any] | None
) -> tuple[str | None, list[str]]:
    """The script's migration tag and Durable Object classes after this upload's migrations."""
    tag = existing["migration_tag"] if existing else None
    classes = set(existing["durable_object_classes"]) if existing else set()
    if migrations is None:
        return tag, sorted(classes)
    fields = Fields(migrations, INVALID, "migrations")
    old_tag, new_tag = fields.text("old_tag", empty=True), fields.text("new_tag", empty=True)
    # The API checks old_tag against the script's current migration tag and refuses a mismatch; old_tag
    # may be omitted only while the script has no tag (cloudflare/wrangler-legacy#1992;
    # pulumi/pulumi-cloudflare#1215: "Actor migration tag precondition failed, got tag 'v0' when expected
    # tag is 'v1'"; cloudflare/workers-sdk#6953: "Migration tag precondition failed; current tag is 'v1'"),
    # HTTP 412, code 10079 (cloudflare/terraform-provider-cloudflare#5701, #5898).
    if (old_tag or None) != tag:
        raise ApiError(
            412, 10079, f"Migration tag precondition failed; current tag is {tag!r}, got {old_tag!r}"
        )
    for step in _steps(migrations):
        for cls in (step.texts("new_sqlite_classes") or []) + (step.texts("new_classes") or []):
            if cls in classes:
                # A class gets its Durable Object namespace once (code 10074, as the lifecycle stand-in).
                raise ApiError(400, 10074, f"class {cls!r} already has a Durable Object namespace")
            classes.add(cls)
        for cls in step.texts("deleted_classes") or []:
            classes.discard(cls)
        for renamed in step.objects("renamed_classes") or []:
            moved = Fields(renamed, INVALID, "renamed class")
            classes.discard(moved.need_text("from"))
            classes.add(moved.need_text("to"))
    return (new_tag or tag), sorted(classes)


def _compatibility_date(text: str | None) -> str | None:
    """A date the runtime already has: "Can't set compatibility date in the future: 2024-03-31
    [code: 10021]" (cloudflare/workers-sdk#5453; the API's clock is UTC)."""
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, INVALID, f"compatibility_date {text!r} is not a date (YYYY-MM-DD)") from None
    if len(text) != 10:
        raise ApiError(400, INVALID, f"compatibility_date {text!r} is not a date (YYYY-MM-DD)")
    if day > datetime.now(UTC).date():
        raise ApiError(400, INVALID, f"Can't set compatibility date in the future: {text}")
    return text


def summary(name: str, script: dict[str, Any]) -> dict[str, Any]:
    """A script as the list and the upload answer describe it (secrets never leave the API)."""
    return {
        "id": name,
        "etag": script["etag"],
        "created_on": script["created_on"],
        "modified_on": script["modified_on"],
        "compatibility_date": script["compatibility_date"],
        "compatibility_flags": script["compatibility_flags"],
        "has_assets": False,
        "has_modules": script["main_module"] is not None,
        "handlers": ["fetch"],
        "logpush": script["logpush"],
        "migration_tag": script["migration_tag"],
        "usage_model": script["usage_model"],
        "tags": script["tags"],
        "tail_consumers": script["tail_consumers"],
        "placement": script["placement"],
        "observability": script["observability"],
    }


def public_bindings(script: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in b.items() if not (b["type"] in SECRET_TYPES and k == "text")}
        for b in script["bindings"]
    ]


@route("PUT", "/accounts/{account_id}/workers/scripts/{script_name}")
def upload(request: Request, store: Store) -> Answer:
    parts = request.parts(INVALID)
    raw = _json_part(parts, "metadata", "the upload")
    metadata = Fields(raw, INVALID, "metadata")
    modules = {part.filename or part.name: part for part in parts if part.name != "metadata"}
    main_module, body_part = metadata.text("main_module"), metadata.text("body_part")
    entry = main_module or body_part
    if entry is None:
        raise ApiError(400, INVALID, "metadata names neither main_module nor body_part")
    if entry not in modules:
        raise ApiError(400, INVALID, "Uncaught TypeError: Main module name is not present in bundle.")
    if sum(len(part.data) for part in modules.values()) > SCRIPT_SIZE_LIMIT:
        raise ApiError(400, 10027, f"script {request.params['script_name']} exceeds the size limit")
    compatibility_date = _compatibility_date(metadata.text("compatibility_date"))
    flags = metadata.texts("compatibility_flags") or []
    migrations = metadata.mapping("migrations")
    tags = metadata.texts("tags")
    logpush = metadata.flag("logpush")
    usage_model = metadata.text("usage_model")

    def apply(state: State) -> Answer:
        home = account(state, request)
        name = request.params["script_name"]
        # PUT creates or replaces by name: a script left behind (retained) is taken over, migration tag
        # and Durable Objects included.
        existing = home["scripts"].get(name)
        bindings = _bindings(metadata, home["kv_namespaces"], existing)
        tag, classes = _migrate(existing, migrations)
        for binding in bindings:
            # A Durable Object binding of this script needs its class created by a migration first (the
            # API: "Cannot create binding for class ... Did you forget to apply a migration?"; code 10061
            # as the lifecycle stand-in has it).
            if (
                binding["type"] == "durable_object_namespace"
                and not binding.get("script_name")
                and binding.get("class_name") not in classes
            ):
                raise ApiError(
                    400,
                    10061,
                    f"Cannot create binding for class {binding.get('class_name')!r}: no migration created it",
                )
        digest = hashlib.sha256()
        for module_name in sorted(modules):
            digest.update(module_name.encode() + b"\0" + modules[module_name].data)
        stamp = now()
        script = {
            "main_module": main_module,
            "body_part": body_part,
            "modules": {module_name: _module(part) for module_name, part in sorted(modules.items())},
            "etag": digest.hexdigest(),
            "compatibility_date": compatibility_date,
            "compatibility_flags": flags,
            "bindings": bindings,
            "migration_tag": tag,
            "durable_object_classes": classes,
            "logpush": bool(logpush) if logpush is not None else (existing or {}).get("logpush", False),
            "usage_model": usage_model or "standard",
            "tags": tags if tags is not None else (existing or {}).get("tags", []),
            "tail_consumers": metadata.objects("tail_consumers") or [],
            "placement": metadata.mapping("placement"),
            "observability": metadata.mapping("observability"),
            "created_on": existing["created_on"] if existing else stamp,
            "modified_on": stamp,
            "uploads": (existing["uploads"] if existing else 0) + 1,
        }
        home["scripts"][name] = script
        return Answer({**summary(name, script), "startup_time_ms": 1})

    return store.change(apply)


@route("GET", "/accounts/{account_id}/workers/scripts")
def list_scripts(request: Request, store: Store) -> Answer:
    return store.read(
        lambda state: whole(
            [summary(name, s) for name, s in sorted(account(state, request)["scripts"].items())]
        )
    )


@route("GET", "/accounts/{account_id}/workers/scripts/{script_name}")
def content(request: Request, store: Store) -> Answer:
    """The entry module's source, as the API answers `Accept: application/javascript`."""

    def look(state: State) -> Answer:
        script = _script(state, request)
        module = script["modules"][script["main_module"] or script["body_part"]]
        data = module["text"].encode() if "text" in module else base64.b64decode(module["base64"])
        return Answer(raw=data, raw_type=module["content_type"])

    return store.read(look)


@route("GET", "/accounts/{account_id}/workers/scripts/{script_name}/content/v2")
def content_v2(request: Request, store: Store) -> Answer:
    return content(request, store)


@route("DELETE", "/accounts/{account_id}/workers/scripts/{script_name}")
def delete(request: Request, store: Store) -> Answer:
    def apply(state: State) -> Answer:
        script = _script(state, request)
        home = account(state, request)
        name = request.params["script_name"]
        if script["durable_object_classes"]:
            # Deleting a script deletes its Durable Objects' stored data: recorded, so a test can see it.
            home.setdefault("lost_durable_object_data", []).append(
                {"script": name, "classes": script["durable_object_classes"], "deleted_on": now()}
            )
        del home["scripts"][name]
        return Answer({"id": name})

    return store.change(apply)


def _settings(script: dict[str, Any]) -> dict[str, Any]:
    return {
        "bindings": public_bindings(script),
        "compatibility_date": script["compatibility_date"],
        "compatibility_flags": script["compatibility_flags"],
        "logpush": script["logpush"],
        "observability": script["observability"],
        "placement": script["placement"],
        "tags": script["tags"],
        "tail_consumers": script["tail_consumers"],
        "usage_model": script["usage_model"],
    }


@route("GET", "/accounts/{account_id}/workers/scripts/{script_name}/settings")
def settings(request: Request, store: Store) -> Answer:
    return store.read(lambda state: Answer(_settings(_script(state, request))))


def _edit_settings(request: Request, store: Store, changes: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(changes, INVALID, "settings")
    edits: dict[str, Any] = {}
    for key, reader in (
        ("logpush", fields.flag),
        ("tags", fields.texts),
        ("observability", fields.mapping),
        ("tail_consumers", fields.objects),
        ("compatibility_date", fields.text),
        ("compatibility_flags", fields.texts),
        ("usage_model", fields.text),
    ):
        value = reader(key)
        if value is not None:
            edits[key] = value
    if "compatibility_date" in edits:
        _compatibility_date(edits["compatibility_date"])
    if "bindings" in changes:
        # Bindings change with a new upload, where the rules above apply; a settings edit that
        # names them is refused rather than half-applied.
        raise ApiError(400, INVALID, "the emulator changes bindings only through an upload")

    def apply(state: State) -> dict[str, Any]:
        script = _script(state, request)
        script.update(edits)
        script["modified_on"] = now()
        return script

    return store.change(apply)


@route("PATCH", "/accounts/{account_id}/workers/scripts/{script_name}/settings")
def edit_settings(request: Request, store: Store) -> Answer:
    """Script and version settings: a multipart body with one JSON `settings` part."""
    changes = _json_part(request.parts(INVALID), "settings", "the body")
    return Answer(_settings(_edit_settings(request, store, changes)))


def _script_settings(script: dict[str, Any]) -> dict[str, Any]:
    return {key: script[key] for key in ("logpush", "observability", "tags", "tail_consumers")}


@route("GET", "/accounts/{account_id}/workers/scripts/{script_name}/script-settings")
def script_settings(request: Request, store: Store) -> Answer:
    return store.read(lambda state: Answer(_script_settings(_script(state, request))))


@route("PATCH", "/accounts/{account_id}/workers/scripts/{script_name}/script-settings")
def edit_script_settings(request: Request, store: Store) -> Answer:
    changes = request.json_object(INVALID)
    unknown = set(changes) - {"logpush", "observability", "tags", "tail_consumers"}
    if unknown:
        raise ApiError(400, INVALID, f"unknown script settings: {', '.join(sorted(unknown))}")
    return Answer(_script_settings(_edit_settings(request, store, changes)))
