"""The Pulumi program under mocks: security properties of what it would create."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from infra.build.migrations import migration_history
from infra.config.loader import load_stack
from infra.plan.document import plan_document
from infra.plan.runner import Recording, is_secret, run_plan
from infra.policy.access_plan import gateway_policy_keys
from infra.policy.compiler import compile_gateway
from infra.rules.registry import SECRET_NAME

STACKS = ("local", "dev", "staging", "prod")


@cache
def recorded(stack: str) -> Recording:
    return run_plan(load_stack(stack))


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret(value) else value


def scripts(recording: Recording) -> list[Any]:
    return recording.of_type("WorkersScript")


@pytest.mark.parametrize("stack", STACKS)
def test_house_style(stack: str) -> None:
    recording = recorded(stack)
    by_name = {r.name: r for r in recording.resources}
    for resource in recording.resources:
        if not resource.custom:
            # Our components, and pulumi-kubernetes' Helm chart component (Airflow's, under ours).
            if resource.type == "kubernetes:helm.sh/v4:Chart":
                assert not by_name[resource.parent].custom and resource.name.startswith(f"{resource.parent}-")
                continue
            assert re.fullmatch(r"airgate:[a-z]+:[A-Z][A-Za-z]+", resource.type), resource.type
            continue
        assert resource.parent is not None, f"{resource.name} has no parent component"
        assert resource.name.startswith(f"{resource.parent}-"), resource.name
        assert not by_name[resource.parent].custom


@pytest.mark.parametrize("stack", STACKS)
def test_every_access_gateway_is_behind_an_access_app(stack: str) -> None:
    loaded = load_stack(stack)
    recording = recorded(stack)
    apps = {unwrap(a.inputs["domain"]): a for a in recording.of_type("ZeroTrustAccessApplication")}
    for name, gateway in loaded.config.gateways.items():
        if not gateway.behind_access:
            assert gateway.hostname not in apps
            continue
        app = apps[gateway.hostname]
        assert app.inputs["type"] == "self_hosted"
        policies = app.inputs["policies"]
        assert [p["precedence"] for p in policies] == list(range(1, len(policies) + 1))
        assert len(policies) == len(gateway_policy_keys(loaded.config, name)) > 0


def test_prod_puts_every_gateway_behind_access() -> None:
    loaded = load_stack("prod")
    domains = {a.inputs["domain"] for a in recorded("prod").of_type("ZeroTrustAccessApplication")}
    airflow = loaded.config.airflow
    assert airflow is not None
    assert domains == {g.hostname for g in loaded.config.gateways.values()} | {
        airflow.ui_hostname,
        airflow.api_hostname,
    }


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_looking_binding_is_plain_text(stack: str) -> None:
    placeholders = [
        f"plan-placeholder-{key}"
        for key in ("ingestUpstreamToken", "warehouseUpstreamToken", "oktaClientSecret")
    ]
    for script in scripts(recorded(stack)):
        raw = script.inputs["bindings"]
        bindings = unwrap(raw)
        has_secret_binding = any(b["type"] == "secret_text" for b in bindings)
        assert is_secret(raw) == has_secret_binding
        secret_values = [b["text"] for b in bindings if b["type"] == "secret_text"]
        assert all(secret_values)
        for binding in bindings:
            if binding["name"] == "UPSTREAM_CREDENTIAL":
                assert binding["text"] in placeholders
            if binding["type"] == "secret_text":
                continue
            if binding["type"] in ("plain_text", "json"):
                assert not SECRET_NAME.search(binding["name"]), binding["name"]
                text = binding.get("text") or binding.get("json") or ""
                assert not any(p in text for p in placeholders + secret_values), binding["name"]


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_service_token_secrets_are_secret_outputs(stack: str) -> None:
    recording = recorded(stack)
    assert is_secret(recording.outputs["service_token_secrets"])
    client_ids = recording.outputs["service_token_client_ids"]
    assert not is_secret(client_ids)
    secrets = set(unwrap(recording.outputs["service_token_secrets"]).values())
    rendered = json.dumps({k: v for k, v in recording.outputs.items() if k != "service_token_secrets"})
    assert not any(secret in rendered for secret in secrets)
    assert all(value.endswith(".access") for value in client_ids.values())


def test_plan_document_masks_every_secret() -> None:
    loaded = load_stack("prod")
    document = json.dumps(plan_document(loaded, recorded("prod")))
    assert "plan-placeholder-" not in document
    secrets = unwrap(recorded("prod").outputs["service_token_secrets"]).values()
    assert not any(secret in document for secret in secrets)
    assert "[secret]" in document


@pytest.mark.parametrize("stack", STACKS)
def test_every_bound_durable_object_class_has_a_migration(stack: str) -> None:
    config = load_stack(stack).config
    alive = migration_history(config).alive_classes()
    for script in scripts(recorded(stack)):
        bound = {
            b["className"]
            for b in unwrap(script.inputs["bindings"])
            if b["type"] == "durable_object_namespace"
        }
        assert bound and bound <= alive
        migrations = script.inputs["migrations"]
        assert migrations["newTag"] == config.durable_object_migrations[-1].tag
        assert "oldTag" not in migrations  # a new script has no tag yet


@pytest.mark.parametrize("stack", STACKS)
def test_policy_written_to_kv_is_the_compiler_output(stack: str) -> None:
    config = load_stack(stack).config
    recording = recorded(stack)
    for gateway in config.gateways:
        policy = compile_gateway(config, gateway)
        entry = recording.by_name(f"{gateway}-policy")
        assert entry.inputs["value"] == policy.canonical
        assert entry.inputs["keyName"] == f"policy:{policy.version}"
        script = recording.by_name(f"{gateway}-script")
        version = next(b["text"] for b in unwrap(script.inputs["bindings"]) if b["name"] == "POLICY_VERSION")
        assert version == policy.version
        kv = next(b for b in unwrap(script.inputs["bindings"]) if b["name"] == "POLICY")
        assert kv["namespaceId"] == entry.inputs["namespaceId"]


def test_access_gateways_validate_their_own_apps_audience() -> None:
    recording = recorded("dev")
    auds = recording.outputs["access_aud"]
    identity = next(
        b for b in unwrap(recording.by_name("ingest-script").inputs["bindings"]) if b["name"] == "IDENTITY"
    )
    document = json.loads(identity["json"])
    assert document["mode"] == "access"
    assert document["audience"] == [auds["ingest"]]
    assert document["jwks_url"] == "https://acme-dev.cloudflareaccess.com/cdn-cgi/access/certs"


@pytest.mark.parametrize(("stack", "protected"), [("prod", True), ("dev", False), ("local", False)])
def test_prod_data_holding_resources_are_protected(stack: str, protected: bool) -> None:
    recording = recorded(stack)
    holders = recording.of_type("WorkersKvNamespace") + scripts(recording)
    assert holders
    assert all(resource.protect is protected for resource in holders)


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_planning_twice_gives_identical_inputs(stack: str) -> None:
    loaded = load_stack(stack)
    first = plan_document(loaded, run_plan(loaded))
    second = plan_document(loaded, run_plan(loaded))
    assert first == second


def test_service_token_rotation_keeps_previous_secret_until_expiry(write_stack: Any, load: Any) -> None:
    write_stack(
        set_keys={
            "service_tokens": {
                "ai-agent": {
                    "duration": "2160h",
                    "rotation": {"version": 3, "previous_secret_expires_at": "2026-12-15T00:00:00Z"},
                }
            }
        },
        shared=lambda base: None,
    )
    loaded = load("candidate")
    token = next(
        r
        for r in run_plan(loaded).of_type("ZeroTrustAccessServiceToken")
        if r.name == "identity-token-ai-agent"
    )
    assert token.inputs["clientSecretVersion"] == 3
    assert token.inputs["previousClientSecretExpiresAt"] == "2026-12-15T00:00:00Z"


def test_service_token_policies_use_non_identity() -> None:
    for policy in recorded("prod").of_type("ZeroTrustAccessPolicy"):
        includes = policy.inputs["includes"]
        machine = any("serviceToken" in include for include in includes)
        assert policy.inputs["decision"] == ("non_identity" if machine else "allow")


def test_prod_logpush_proves_ownership_with_a_secret() -> None:
    [job] = recorded("prod").of_type("LogpushJob")
    challenge = job.inputs["ownershipChallenge"]
    assert is_secret(challenge)
    assert unwrap(challenge) == "plan-placeholder-logpushOwnershipChallenge"
    assert unwrap(job.inputs["destinationConf"]).startswith("s3://")


def test_a_first_deploy_exports_what_each_script_was_given_as_a_secret() -> None:
    """The next deploy reads it back (docs/design/migrations.md); it covers secret inputs."""
    edge_scripts = recorded("dev").outputs["edge_scripts"]
    assert is_secret(edge_scripts)
    for gateway, upload in unwrap(edge_scripts).items():
        assert upload["sent"]["new_tag"] == "v1", gateway
        assert len(upload["fingerprint"]) == 64
