"""What every answer shares: the bearer token, Cloudflare's envelope and error codes, malformed input
refused with nothing written, and state that survives a restart of the emulator process."""

from __future__ import annotations

import json
from pathlib import Path

import cloudflare
import httpx
import pytest
from cloudflare import Cloudflare

from local_services.cloudflare_api.testing import RunningEmulator, running_emulator
from tests.emulator.conftest import ACCOUNT, TOKEN, ZONE, ZONE_NAME, client, refused, unchanged
from tests.emulator.test_workers import upload


def test_a_wrong_token_is_refused_as_cloudflare_refuses_it(emulator: RunningEmulator) -> None:
    with (
        client(emulator, token="not-the-token") as wrong,
        pytest.raises(cloudflare.PermissionDeniedError) as caught,
    ):
        wrong.kv.namespaces.list(account_id=ACCOUNT)
    assert caught.value.status_code == 403
    assert [(e.code, e.message) for e in caught.value.errors] == [(10000, "Authentication error")]


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, 9106), ({"authorization": TOKEN}, 6003), ({"authorization": "Basic dXNlcjpwYXNz"}, 6003)],
)
def test_missing_or_malformed_credentials(
    emulator: RunningEmulator, headers: dict[str, str], code: int
) -> None:
    """The client library never sends these (it insists on a token), so a plain HTTP client does."""
    answer = httpx.get(f"{emulator.base_url}/accounts/{ACCOUNT}/storage/kv/namespaces", headers=headers)
    assert answer.status_code == 400
    body = answer.json()
    assert body["success"] is False and body["result"] is None and body["errors"][0]["code"] == code


def test_malformed_json_is_a_400_and_writes_nothing(cf: Cloudflare, emulator: RunningEmulator) -> None:
    cf.kv.namespaces.create(account_id=ACCOUNT, title="policy")
    same = unchanged(emulator)
    auth = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    for path, body in (
        (f"/accounts/{ACCOUNT}/storage/kv/namespaces", b"{"),
        (f"/accounts/{ACCOUNT}/access/policies", b"[not json"),
        (f"/zones/{ZONE}/dns_records", b""),
    ):
        answer = httpx.post(emulator.base_url + path, content=body, headers=auth)
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"] == [{"code": 6007, "message": "Malformed JSON in request body"}]
    # Well-formed JSON of the wrong shape is the service's validation error, still nothing written.
    refused(
        400,
        12130,
        cf.zero_trust.access.policies.create,
        account_id=ACCOUNT,
        name=7,
        decision="allow",
        include=[],
    )
    same()


def test_unknown_paths_methods_and_identifiers(emulator: RunningEmulator) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    no_route = httpx.get(f"{emulator.base_url}/accounts/{ACCOUNT}/r2/buckets", headers=auth)
    assert no_route.status_code == 400
    assert no_route.json()["errors"] == [
        {
            "code": 7003,
            "message": f"Could not route to /client/v4/accounts/{ACCOUNT}/r2/buckets, "
            "perhaps your object identifier is invalid?",
        },
        {"code": 7000, "message": "No route for that URI"},
    ]
    wrong_method = httpx.post(f"{emulator.base_url}/accounts/{ACCOUNT}/workers/scripts", headers=auth)
    assert wrong_method.status_code == 405 and wrong_method.json()["errors"][0]["code"] == 7001
    unknown = httpx.get(f"{emulator.base_url}/accounts/{'f' * 32}/workers/scripts", headers=auth)
    assert unknown.status_code == 400 and [e["code"] for e in unknown.json()["errors"]] == [7003, 7000]


def test_state_survives_a_restart(state_path: Path) -> None:
    with running_emulator(state_path, TOKEN, ACCOUNT, {ZONE: ZONE_NAME}) as first, client(first) as cf:
        namespace = cf.kv.namespaces.create(account_id=ACCOUNT, title="policy")
        cf.kv.namespaces.values.update("control", account_id=ACCOUNT, namespace_id=namespace.id, value=b"{}")
        upload(cf, migrations={"new_tag": "v1", "steps": [{"new_sqlite_classes": ["RateLimiter"]}]})
    # Written atomically: the state file and nothing half-written beside it.
    assert sorted(p.name for p in state_path.parent.iterdir()) == [
        "cloudflare.json",
        "cloudflare.json.log",
        "cloudflare.json.requests.jsonl",
    ]
    # What a process killed in the middle of a write would leave: its temporary file, cleared at start.
    (state_path.parent / ".cloudflare.json.interrupted").write_text('{"half": ')
    with running_emulator(state_path, TOKEN, ACCOUNT, {ZONE: ZONE_NAME}) as second, client(second) as cf:
        assert not (state_path.parent / ".cloudflare.json.interrupted").exists()
        assert (
            cf.kv.namespaces.values.get("control", account_id=ACCOUNT, namespace_id=namespace.id).text()
            == "{}"
        )
        # The migration tag is remembered: re-sending the first migration is refused after the restart too.
        refused(
            412,
            10079,
            upload,
            cf,
            migrations={"new_tag": "v1", "steps": [{"new_sqlite_classes": ["RateLimiter"]}]},
        )
        assert [s.migration_tag for s in cf.workers.scripts.list(account_id=ACCOUNT)] == ["v1"]


def test_a_token_that_begins_with_a_dash_is_a_token(state_path: Path) -> None:
    """`secrets.token_urlsafe` starts one token in 64 with "-": such a token once failed the CI run."""
    token = "-0bIwpdf1xPoQaQ8Cc7ZXwQNkFoFWP4L"
    with running_emulator(state_path, token, ACCOUNT) as emulator:
        listed = httpx.get(
            f"{emulator.base_url}/accounts/{ACCOUNT}/workers/scripts",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert listed.status_code == 200 and listed.json()["result"] == []


def test_a_file_that_is_not_emulator_state_is_refused(state_path: Path) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_text(json.dumps({"something": "else"}))
    with (
        pytest.raises(RuntimeError, match="not an emulator state file"),
        running_emulator(state_path, TOKEN, ACCOUNT),
    ):
        pass
    assert json.loads(state_path.read_text()) == {"something": "else"}


def test_a_fault_on_request_fails_one_call_and_changes_nothing(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    """For tests of a deploy that fails half-way: the failure is the API's answer, the state untouched."""
    emulator.fail_next("PUT", r"/workers/scripts/gw$", status=500, code=10013, message="upstream failure")
    with pytest.raises(cloudflare.InternalServerError) as caught:
        upload(cf)
    assert [(e.code, e.message) for e in caught.value.errors] == [(10013, "upstream failure")]
    assert emulator.state()["accounts"][ACCOUNT]["scripts"] == {}
    upload(cf)  # used up: the next one goes through
    assert [(entry["method"], entry["status"], entry["code"]) for entry in emulator.journal()] == [
        ("PUT", 500, 10013),
        ("PUT", 200, None),
    ]
    assert emulator.journal()[0]["path"] == f"/accounts/{ACCOUNT}/workers/scripts/gw"
    cf.workers.scripts.list(account_id=ACCOUNT)
    assert len(emulator.journal()) == 2  # reads are not journalled
