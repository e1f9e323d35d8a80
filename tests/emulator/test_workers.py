"""Worker scripts through the official client: the upload (metadata + modules) as the client library
and as the Terraform provider v5 shape it, the account's list, content, settings, delete; and every
rule an upload must pass, with nothing written when it fails."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cloudflare import Cloudflare
from cloudflare.types.workers import ScriptUpdateResponse

from local_services.cloudflare_api.resources.scripts import SCRIPT_SIZE_LIMIT
from local_services.cloudflare_api.testing import RunningEmulator
from tests.emulator.conftest import ACCOUNT, TOKEN, refused, unchanged

MODULE = b"export default { fetch() { return new Response('ok') } }"
DO = {"type": "durable_object_namespace", "name": "RATE_LIMITER", "class_name": "RateLimiter"}
V1 = {"new_tag": "v1", "steps": [{"new_sqlite_classes": ["RateLimiter"]}]}


def upload(cf: Cloudflare, name: str = "gw", module: bytes = MODULE, **metadata: Any) -> ScriptUpdateResponse:
    return cf.workers.scripts.update(
        name,
        account_id=ACCOUNT,
        metadata={"main_module": "gateway.js", "compatibility_date": "2025-06-01", **metadata},
        files=[("gateway.js", module, "application/javascript+module")],
    )


def test_an_upload_is_listed_read_back_and_kept_with_its_bindings(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    namespace = cf.kv.namespaces.create(account_id=ACCOUNT, title="gw-policy")
    bindings = [
        {"type": "kv_namespace", "name": "POLICY", "namespace_id": namespace.id},
        {"type": "plain_text", "name": "GATEWAY", "text": "ingest"},
        {"type": "secret_text", "name": "UPSTREAM_TOKEN", "text": "s3cret"},
        DO,
    ]
    answer = upload(cf, bindings=bindings, migrations=V1, compatibility_flags=["nodejs_compat"])
    assert answer.id == "gw" and answer.migration_tag == "v1" and answer.has_modules
    assert [s.id for s in cf.workers.scripts.list(account_id=ACCOUNT)] == ["gw"]
    assert cf.workers.scripts.get("gw", account_id=ACCOUNT) == MODULE.decode()
    settings = cf.workers.scripts.script_and_version_settings.get("gw", account_id=ACCOUNT)
    assert settings.compatibility_date == "2025-06-01" and settings.compatibility_flags == ["nodejs_compat"]
    by_name = {b.name: b.to_dict() for b in settings.bindings or []}
    assert by_name["POLICY"]["namespace_id"] == namespace.id
    assert "text" not in by_name["UPSTREAM_TOKEN"]  # secrets never come back out
    stored = emulator.state()["accounts"][ACCOUNT]["scripts"]["gw"]
    assert (
        stored["main_module"] == "gateway.js" and stored["modules"]["gateway.js"]["text"] == MODULE.decode()
    )
    assert [b["name"] for b in stored["bindings"]] == ["POLICY", "GATEWAY", "UPSTREAM_TOKEN", "RATE_LIMITER"]
    assert stored["migration_tag"] == "v1" and stored["durable_object_classes"] == ["RateLimiter"]


def test_the_terraform_provider_v5_multipart_shape_is_accepted(emulator: RunningEmulator) -> None:
    """terraform-provider-cloudflare v5 (internal/services/workers_script/model.go, MarshalMultipart) sends
    the module as a part named after the main module, and `metadata` as an application/json part."""
    files = {
        "gateway.js": ("gateway.js", MODULE, "application/javascript+module"),
        "metadata": (
            None,
            b'{"main_module": "gateway.js", "compatibility_date": "2025-06-01"}',
            "application/json",
        ),
    }
    answer = httpx.put(
        f"{emulator.base_url}/accounts/{ACCOUNT}/workers/scripts/tf",
        files=files,
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 200, answer.text
    assert ScriptUpdateResponse.model_validate(answer.json()["result"]).id == "tf"
    assert emulator.state()["accounts"][ACCOUNT]["scripts"]["tf"]["modules"]["gateway.js"]["size"] == len(
        MODULE
    )


def test_the_migration_tag_precondition(cf: Cloudflare, emulator: RunningEmulator) -> None:
    upload(cf, bindings=[DO], migrations=V1)
    same = unchanged(emulator)
    # Re-sending the first upload's migrations (no old_tag) on a tagged script is refused...
    error = refused(412, 10079, upload, cf, bindings=[DO], migrations=V1)
    assert "precondition failed" in error.errors[0].message
    # ... and so is a wrong old_tag.
    wrong = {"old_tag": "v0", "new_tag": "v2", "steps": [{"new_sqlite_classes": ["Audit"]}]}
    refused(412, 10079, upload, cf, bindings=[DO], migrations=wrong)
    same()
    upload(cf, bindings=[DO], migrations={**wrong, "old_tag": "v1"})
    upload(cf, bindings=[DO])  # no migrations: the tag stays
    listed = cf.workers.scripts.list(account_id=ACCOUNT)
    assert [s.migration_tag for s in listed] == ["v2"]
    assert emulator.state()["accounts"][ACCOUNT]["scripts"]["gw"]["durable_object_classes"] == [
        "Audit",
        "RateLimiter",
    ]


def test_an_old_tag_on_a_script_without_one_is_refused(cf: Cloudflare) -> None:
    refused(412, 10079, upload, cf, migrations={**V1, "old_tag": "v0"})
    assert list(cf.workers.scripts.list(account_id=ACCOUNT)) == []


def test_single_step_migrations_and_deleted_classes(cf: Cloudflare, emulator: RunningEmulator) -> None:
    upload(cf, bindings=[DO], migrations={"new_tag": "v1", "new_sqlite_classes": ["RateLimiter"]})
    upload(cf, migrations={"old_tag": "v1", "new_tag": "v2", "deleted_classes": ["RateLimiter"]})
    assert emulator.state()["accounts"][ACCOUNT]["scripts"]["gw"]["durable_object_classes"] == []
    refused(400, 10061, upload, cf, bindings=[DO])


def test_upload_rules(cf: Cloudflare, emulator: RunningEmulator) -> None:
    same = unchanged(emulator)
    refused(400, 10061, upload, cf, bindings=[DO])  # no migration created the class
    twice = [{"type": "plain_text", "name": "GATEWAY", "text": "a"}] * 2
    refused(400, 10021, upload, cf, bindings=twice)
    refused(
        400, 10041, upload, cf, bindings=[{"type": "kv_namespace", "name": "KV", "namespace_id": "f" * 32}]
    )
    refused(400, 10027, upload, cf, module=b"x" * (SCRIPT_SIZE_LIMIT + 1))
    refused(400, 10021, upload, cf, main_module="missing.js")
    same()
    upload(cf, migrations=V1)
    again = {"old_tag": "v1", "new_tag": "v2", "steps": [{"new_sqlite_classes": ["RateLimiter"]}]}
    refused(400, 10074, upload, cf, migrations=again)


def test_a_compatibility_date_is_a_day_that_has_come(cf: Cloudflare, emulator: RunningEmulator) -> None:
    # Two days ahead: still the future if the test runs across midnight (UTC).
    ahead = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    error = refused(400, 10021, upload, cf, compatibility_date=ahead)
    assert error.errors[0].message == f"Can't set compatibility date in the future: {ahead}"
    refused(400, 10021, upload, cf, compatibility_date="2025-13-01")
    today = datetime.now(UTC).date().isoformat()
    upload(cf, compatibility_date=today)  # today is fine
    edit = cf.workers.scripts.script_and_version_settings.edit
    refused(400, 10021, edit, "gw", account_id=ACCOUNT, settings={"compatibility_date": ahead})
    stored = emulator.state()["accounts"][ACCOUNT]["scripts"]["gw"]
    assert (stored["uploads"], stored["compatibility_date"]) == (1, today)


def test_a_malformed_upload_gets_a_400_and_writes_nothing(emulator: RunningEmulator) -> None:
    same = unchanged(emulator)
    url = f"{emulator.base_url}/accounts/{ACCOUNT}/workers/scripts/gw"
    auth = {"authorization": f"Bearer {TOKEN}"}
    for files in (
        {
            "metadata": (None, b"{not json", "application/json"),
            "gateway.js": ("gateway.js", MODULE, "text/javascript"),
        },
        {"metadata": (None, b"[1]", "application/json")},
        {"gateway.js": ("gateway.js", MODULE, "text/javascript")},
        {"metadata": (None, b'{"main_module": "gateway.js", "bindings": [{"name": 1}]}', "application/json")},
    ):
        answer = httpx.put(url, files=files, headers=auth)
        assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == 10021, answer.text
    answer = httpx.put(
        url, content=b"export default {}", headers={**auth, "content-type": "application/javascript"}
    )
    assert answer.status_code == 400 and answer.json()["success"] is False
    same()


def test_settings_edits_and_delete(cf: Cloudflare, emulator: RunningEmulator) -> None:
    upload(cf, bindings=[DO], migrations=V1)
    edited = cf.workers.scripts.settings.edit("gw", account_id=ACCOUNT, logpush=True, tags=["airgate"])
    assert edited.logpush is True and edited.tags == ["airgate"]
    assert cf.workers.scripts.settings.get("gw", account_id=ACCOUNT).logpush is True
    versioned = cf.workers.scripts.script_and_version_settings.edit(
        "gw", account_id=ACCOUNT, settings={"compatibility_date": "2025-07-01"}
    )
    assert versioned.compatibility_date == "2025-07-01" and versioned.logpush is True
    cf.workers.scripts.delete("gw", account_id=ACCOUNT)
    refused(404, 10007, cf.workers.scripts.delete, "gw", account_id=ACCOUNT)
    refused(404, 10007, cf.workers.scripts.settings.get, "gw", account_id=ACCOUNT)
    # The Durable Objects' data went with the script: the state says so.
    lost = emulator.state()["accounts"][ACCOUNT]["lost_durable_object_data"]
    assert [(entry["script"], entry["classes"]) for entry in lost] == [("gw", ["RateLimiter"])]


def test_keep_bindings_keeps_what_the_upload_does_not_name_again(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    secret = {"type": "secret_text", "name": "UPSTREAM_TOKEN", "text": "s3cret"}
    plain = {"type": "plain_text", "name": "GATEWAY", "text": "ingest"}
    upload(cf, bindings=[secret, plain])
    upload(cf, bindings=[], keep_bindings=["secret_text"])
    assert [b["name"] for b in emulator.state()["accounts"][ACCOUNT]["scripts"]["gw"]["bindings"]] == [
        "UPSTREAM_TOKEN"
    ]
    upload(cf, bindings=[plain])
    assert [b["name"] for b in emulator.state()["accounts"][ACCOUNT]["scripts"]["gw"]["bindings"]] == [
        "GATEWAY"
    ]


def test_a_binary_module_is_kept_byte_for_byte(cf: Cloudflare, emulator: RunningEmulator) -> None:
    wasm = b"\0asm\1\0\0\0" + bytes(range(256)) + b"\r\n--boundary\r\n"
    cf.workers.scripts.update(
        "gw",
        account_id=ACCOUNT,
        metadata={"main_module": "gateway.js"},
        files=[
            ("gateway.js", MODULE, "application/javascript+module"),
            ("rules.wasm", wasm, "application/wasm"),
        ],
    )
    module = emulator.state()["accounts"][ACCOUNT]["scripts"]["gw"]["modules"]["rules.wasm"]
    assert (
        module["sha256"] == hashlib.sha256(wasm).hexdigest() and module["content_type"] == "application/wasm"
    )
