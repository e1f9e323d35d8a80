"""The `control` KV document: its schema, the pure edits, and `airgate revoke` / `kill-switch`
writing it through a stand-in of the Cloudflare KV API that keeps state (standins.KVApi)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.config.loader import PROJECT_ROOT, load_stack
from infra.control_store.stores import CloudflareKV
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
from tests.unit.standins import KVApi, serve

DEV = load_stack("dev").config
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


def test_update_reads_modifies_and_writes_every_gateways_namespace() -> None:
    api = KVApi("t0ken", DEV.account_id, ["ns-ingest", "ns-trigger"])
    api.values["ns-trigger"]["control"] = '{"revoked_subjects": ["old"], "disabled_roles": []}'
    with serve(api.handler()) as url:
        stores = [
            CloudflareKV(DEV.account_id, ns, "t0ken", f"{url}/client/v4", ns) for ns in sorted(api.values)
        ]
        changes = update_control(stores, lambda c: revoke(c, ["ci"]))
        assert [sorted(c.after.revoked_subjects) for c in changes] == [["ci"], ["ci", "old"]]
        assert json.loads(api.values["ns-ingest"]["control"]) == {
            "revoked_subjects": ["ci"],
            "disabled_roles": [],
        }
        assert api.writes == 2
        update_control(stores, lambda c: revoke(c, ["ci"]))
        assert api.writes == 2  # nothing changed, nothing written
        api.values["ns-ingest"]["control"] = "not json"
        with pytest.raises(ControlError):
            update_control(stores, lambda c: disable(c, ["ci"]))
        assert json.loads(api.values["ns-trigger"]["control"])["disabled_roles"] == []


def airgate(*args: str, token: str = "t0ken") -> subprocess.CompletedProcess[str]:
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


def test_revoke_and_kill_switch_commands_write_through_the_api(tmp_path: Path) -> None:
    api = KVApi("t0ken", DEV.account_id, ["n1", "n2", "n3"])
    ids = ["--namespace-id=ingest=n1", "--namespace-id=trigger=n2", "--namespace-id=warehouse=n3"]
    with serve(api.handler()) as url:
        base = ("-s", "dev", *ids, "--api-url", f"{url}/client/v4")
        revoked = airgate("revoke", "someone@acme-data.com", "ci", *base)
        assert revoked.returncode == 0, revoked.stderr
        switched = airgate("kill-switch", "ai-agent", *base)
        assert switched.returncode == 0, switched.stderr
        assert "gateway warehouse (KV namespace n3): control written" in switched.stdout
        for namespace in ("n1", "n2", "n3"):
            assert json.loads(api.values[namespace]["control"]) == {
                "revoked_subjects": ["ci", "someone@acme-data.com"],
                "disabled_roles": ["ai-agent"],
            }
        assert airgate("kill-switch", "ai-agent", "--undo", *base).returncode == 0
        assert json.loads(api.values["n1"]["control"])["disabled_roles"] == []
        refused = airgate("revoke", "x", *base, token="wrong")
        assert refused.returncode == 1 and "HTTP 403" in refused.stderr
        assert airgate("kill-switch", "no-such-role", *base).returncode == 2
        missing = airgate(
            "revoke", "x", "-s", "dev", "--namespace-id=ingest=n1", "--api-url", f"{url}/client/v4"
        )
        assert missing.returncode == 2 and "missing: trigger, warehouse" in missing.stderr


def test_revoke_finds_the_namespaces_in_the_stacks_outputs(tmp_path: Path) -> None:
    """`pulumi stack output --json` holds kv_namespace_ids; the offline plan records the same outputs."""
    plan_file = tmp_path / "plan.json"
    assert airgate("plan", "-s", "dev", "--json", str(plan_file)).returncode == 0
    outputs = json.loads(plan_file.read_text())["outputs"]
    assert set(outputs["kv_namespace_ids"]) == set(DEV.gateways)
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    api = KVApi("t0ken", DEV.account_id, list(outputs["kv_namespace_ids"].values()))
    with serve(api.handler()) as url:
        result = airgate(
            "revoke",
            "ci",
            "-s",
            "dev",
            "--outputs",
            str(tmp_path / "outputs.json"),
            "--api-url",
            f"{url}/client/v4",
        )
    assert result.returncode == 0, result.stderr
    assert all(json.loads(v["control"])["revoked_subjects"] == ["ci"] for v in api.values.values())
