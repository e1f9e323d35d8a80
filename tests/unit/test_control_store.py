"""The `control` KV document: its schema, the pure edits, and `airgate revoke` / `kill-switch`
writing it through the official `cloudflare` client to the Cloudflare API emulator
(local_services/cloudflare_api), which the client itself checks in tests/emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudflare import Cloudflare
from hypothesis import given
from hypothesis import strategies as st

from infra.config.loader import PROJECT_ROOT, load_stack
from infra.control_store.stores import CloudflareKV, StoreError
from infra.control_store.update import update_control
from infra.policy.control import (
    CONTROL_SCHEMA,
    Control,
    ControlError,
    disable,
    jwks_key,
    parse_control,
    revoke,
)
from local_services.cloudflare_api.testing import RunningEmulator, running_emulator

DEV = load_stack("dev").config
TOKEN = "emulator-test-token"  # the emulator's own token, not a credential
names = st.frozensets(st.text(min_size=1, max_size=8), max_size=4)


@given(names, names, names)
def test_edits_round_trip_through_the_stored_text(
    revoked: frozenset[str], disabled: frozenset[str], more: frozenset[str]
) -> None:
    control = Control(revoked, disabled)
    assert parse_control(control.text()) == control
    assert revoke(revoke(control, more), more, undo=True).revoked_subjects == revoked - more
    assert disable(control, more).disabled_roles == disabled | more
    assert disable(control, more).revoked_subjects == revoked


def test_the_schema_accepts_what_the_writer_writes() -> None:
    import jsonschema

    jsonschema.validate(json.loads(Control(frozenset({"a"}), frozenset({"ci"})).text()), CONTROL_SCHEMA)
    assert jwks_key("http://127.0.0.1:9400") == jwks_key("http://127.0.0.1:9400")
    assert len(jwks_key("x").removeprefix("jwks:")) == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "must be a JSON object"),
        ("{", "not JSON"),
        ('{"revoked_subjects": "ci"}', "list of non-empty strings"),
        ('{"disabled_roles": [1]}', "list of non-empty strings"),
        ('{"revoked": []}', "unknown keys"),
    ],
)
def test_a_malformed_stored_document_is_refused_not_overwritten(text: str, message: str) -> None:
    with pytest.raises(ControlError, match=message):
        parse_control(text)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[RunningEmulator]:
    with running_emulator(tmp_path / "cloudflare.json", TOKEN, DEV.account_id) as api:
        yield api


def namespaces(api: RunningEmulator, *titles: str) -> list[str]:
    """KV namespaces made as a deploy makes them: through the API."""
    with Cloudflare(api_token=TOKEN, base_url=api.base_url) as client:
        return [client.kv.namespaces.create(account_id=DEV.account_id, title=title).id for title in titles]


def stored(api: RunningEmulator, namespace: str) -> dict[str, object]:
    values = api.state()["accounts"][DEV.account_id]["kv_namespaces"][namespace]["values"]
    return {key: json.loads(value["text"]) for key, value in values.items()}


def test_update_reads_modifies_and_writes_every_gateways_namespace(emulator: RunningEmulator) -> None:
    ingest, trigger = namespaces(emulator, "ingest", "trigger")
    stores = [CloudflareKV(DEV.account_id, ns, TOKEN, emulator.base_url, ns) for ns in (ingest, trigger)]
    stores[1].write_control('{"revoked_subjects": ["old"], "disabled_roles": []}')
    changes = update_control(stores, lambda c: revoke(c, ["ci"]))
    assert [sorted(c.after.revoked_subjects) for c in changes] == [["ci"], ["ci", "old"]]
    assert stored(emulator, ingest) == {"control": {"revoked_subjects": ["ci"], "disabled_roles": []}}
    before = emulator.state_path.read_bytes()
    update_control(stores, lambda c: revoke(c, ["ci"]))
    assert emulator.state_path.read_bytes() == before  # nothing changed, nothing written
    stores[0].write_control("not json")
    with pytest.raises(ControlError):
        update_control(stores, lambda c: disable(c, ["ci"]))
    assert stored(emulator, trigger)["control"] == {"revoked_subjects": ["ci", "old"], "disabled_roles": []}


def test_a_store_names_what_the_api_refused(emulator: RunningEmulator) -> None:
    (namespace,) = namespaces(emulator, "ingest")
    wrong = CloudflareKV(DEV.account_id, namespace, "not-the-token", emulator.base_url, "ingest")
    with pytest.raises(
        StoreError, match=r"reading control of gateway ingest .*HTTP 403 10000 Authentication error"
    ):
        wrong.read_control()
    missing = CloudflareKV(DEV.account_id, "0" * 32, TOKEN, emulator.base_url, "ingest")
    with pytest.raises(StoreError, match="HTTP 404 10013"):
        missing.read_control()  # a namespace that is not there is an error, unlike a key that is not there
    with pytest.raises(StoreError, match=r"writing control of gateway ingest .*HTTP 404 10013"):
        missing.write_control("{}")
    unreachable = CloudflareKV(DEV.account_id, namespace, TOKEN, "http://127.0.0.1:9/client/v4", "ingest")
    with pytest.raises(StoreError, match="reading control of gateway ingest"):
        unreachable.read_control()


def airgate(*args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "airgate"), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "COLUMNS": "200",
            "CLOUDFLARE_API_TOKEN": token,
        },
        timeout=60,
    )


def test_revoke_and_kill_switch_commands_write_through_the_api(emulator: RunningEmulator) -> None:
    n1, n2, n3 = namespaces(emulator, "ingest", "trigger", "warehouse")
    ids = [f"--namespace-id=ingest={n1}", f"--namespace-id=trigger={n2}", f"--namespace-id=warehouse={n3}"]
    base = ("-s", "dev", *ids, "--api-url", emulator.base_url)
    revoked = airgate("revoke", "someone@acme-data.com", "ci", *base)
    assert revoked.returncode == 0, revoked.stderr
    switched = airgate("kill-switch", "ai-agent", *base)
    assert switched.returncode == 0, switched.stderr
    assert f"gateway warehouse (KV namespace {n3}): control written" in switched.stdout
    for namespace in (n1, n2, n3):
        assert stored(emulator, namespace)["control"] == {
            "revoked_subjects": ["ci", "someone@acme-data.com"],
            "disabled_roles": ["ai-agent"],
        }
    assert airgate("kill-switch", "ai-agent", "--undo", *base).returncode == 0
    assert stored(emulator, n1)["control"] == {
        "revoked_subjects": ["ci", "someone@acme-data.com"],
        "disabled_roles": [],
    }
    before = emulator.state_path.read_bytes()
    refused = airgate("revoke", "x", *base, token="wrong")
    assert (
        refused.returncode == 1
        and "HTTP 403 10000 Authentication error" in refused.stderr
        and "nothing more was written" in refused.stderr
    )
    assert airgate("kill-switch", "no-such-role", *base).returncode == 2
    missing = airgate(
        "revoke", "x", "-s", "dev", f"--namespace-id=ingest={n1}", "--api-url", emulator.base_url
    )
    assert missing.returncode == 2 and "missing: trigger, warehouse" in missing.stderr
    assert emulator.state_path.read_bytes() == before


def test_revoke_finds_the_namespaces_in_the_stacks_outputs(tmp_path: Path, emulator: RunningEmulator) -> None:
    """`pulumi stack output --json` holds kv_namespace_ids; the offline plan records the same outputs."""
    plan_file = tmp_path / "plan.json"
    assert airgate("plan", "-s", "dev", "--json", str(plan_file)).returncode == 0
    outputs = json.loads(plan_file.read_text())["outputs"]
    assert set(outputs["kv_namespace_ids"]) == set(DEV.gateways)
    # The deployed namespaces have the API's ids: the outputs name those.
    gateways = sorted(outputs["kv_namespace_ids"])
    outputs["kv_namespace_ids"] = dict(zip(gateways, namespaces(emulator, *gateways), strict=True))
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    result = airgate(
        "revoke",
        "ci",
        "-s",
        "dev",
        "--outputs",
        str(tmp_path / "outputs.json"),
        "--api-url",
        emulator.base_url,
    )
    assert result.returncode == 0, result.stderr
    assert all(
        stored(emulator, ns)["control"]["revoked_subjects"] == ["ci"]
        for ns in outputs["kv_namespace_ids"].values()
    )
